"""A webhook for the queue tests, whose health the test controls.

    python3 hook_server.py STATE_DIR

Prints `PORT n` once listening on 127.0.0.1 (a port the OS chose), then
one JSON line per request it finished: {"path", "key" (the
Idempotency-Key header, or null), "size", "sha256", "status"}, and
{"hanging", "key", "sha256"} when it starts holding a request (whose
client may be gone by the time it answers: then it reports nothing more).

While STATE_DIR/down exists it answers 503; while STATE_DIR/reject
exists, 400; while STATE_DIR/hang exists it holds each request (at most
60 s) until the file is removed, then answers 200. Otherwise 200. The
request is parsed by Python's http.server, the body read in full by its
Content-Length, as a WSGI server would.
"""

import hashlib
import http.server
import json
import os
import sys
import threading
import time

state = sys.argv[1]
lock = threading.Lock()


def emit(record):
    with lock:
        print(json.dumps(record), flush=True)


class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if os.path.exists(os.path.join(state, "hang")):
            emit({
                "hanging": self.path,
                "key": self.headers.get("Idempotency-Key"),
                "sha256": hashlib.sha256(body).hexdigest(),
            })
            deadline = time.monotonic() + 60
            while os.path.exists(os.path.join(state, "hang")) and time.monotonic() < deadline:
                time.sleep(0.02)
        if os.path.exists(os.path.join(state, "down")):
            status = 503
        elif os.path.exists(os.path.join(state, "reject")):
            status = 400
        else:
            status = 200
        answer = b"ok\n" if status == 200 else b"not now\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        emit({
            "path": self.path,
            "key": self.headers.get("Idempotency-Key"),
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "status": status,
        })

    do_PUT = do_POST


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
server.daemon_threads = True
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
