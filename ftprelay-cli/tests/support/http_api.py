"""A stand-in for the HTTP APIs the README's --http recipes send to.

It checks each request the way the real service does (path, method,
token, the fields its handler reads; multipart parsed by werkzeug, the
parser Flask uses, as a WSGI application would) and answers as the
service answers, then prints the request as one JSON line for the test
to assert on, field by field.

    python3 http_api.py '{"service": "paperless", "token": "t0k"}'

Prints `PORT n` when listening on 127.0.0.1 (a port the OS chose), then
one line per request: {"method", "path", "query", "headers": [[name,
value]...], "form": {name: [value...]}, "files": {name: [{"filename",
"content_type", "data"}]}, "body", "status", "answer"}; bytes are in hex.

Settings: "service" (paperless, ntfy, telegram, discord, webhook, any),
"token" (what the service's secret must be), "status" (what `any`
answers), "tls": [cert, key] (PEM files) to serve HTTPS.
"""

import http.server
import io
import json
import re
import ssl
import sys
import threading
import uuid

from werkzeug.formparser import parse_form_data

config = json.loads(sys.argv[1])
service = config.get("service", "any")
token = config.get("token", "")
lock = threading.Lock()


def hexed(data):
    return data.hex()


def paperless(request):
    """paperless-ngx's PostDocumentView (DRF): token auth, the file in
    `document`, an optional `title` of at most 128 characters."""
    if request["path"] != "/api/documents/post_document/":
        return 404, {"detail": "Not found."}
    if request["method"] != "POST":
        return 405, {"detail": f'Method "{request["method"]}" not allowed.'}
    if request["header"]("authorization") != f"Token {token}":
        return 401, {"detail": "Invalid token."}
    documents = request["files"].get("document", [])
    if len(documents) != 1 or not documents[0]["filename"]:
        return 400, {"document": ["No file was submitted."]}
    if len(request["form"].get("title", [""])[0]) > 128:
        return 400, {"title": ["Ensure this field has no more than 128 characters."]}
    return 200, str(uuid.uuid4())


def ntfy(request):
    """ntfy's publish endpoint: PUT or POST /<topic>, the raw body an
    attachment named by the `Filename` header (or X-Filename)."""
    topic = request["path"].lstrip("/")
    if not re.fullmatch(r"[-_A-Za-z0-9]{1,64}", topic):
        return 404, {"code": 40401, "http": 404, "error": "page not found"}
    if request["method"] not in ("PUT", "POST"):
        return 405, {"code": 40501, "http": 405, "error": "method not allowed"}
    if token and request["header"]("authorization") != f"Bearer {token}":
        return 403, {"code": 40301, "http": 403, "error": "forbidden"}
    name = request["header"]("filename") or request["header"]("x-filename")
    if not name:
        return 400, {"code": 40000, "http": 400, "error": "no Filename: the file would be the message text"}
    return 200, {
        "id": uuid.uuid4().hex[:12],
        "event": "message",
        "topic": topic,
        "attachment": {"name": name, "size": len(request["raw"])},
    }


def telegram(request):
    """The Bot API's sendDocument: /bot<token>/sendDocument, `chat_id` and
    the file in `document` (multipart)."""
    match = re.fullmatch(r"/bot([^/]+)/sendDocument", request["path"])
    if not match:
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
    if match.group(1) != token:
        return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
    chat = request["form"].get("chat_id", [""])[0]
    if not chat:
        return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat_id is empty"}
    documents = request["files"].get("document", [])
    if len(documents) != 1:
        return 400, {"ok": False, "error_code": 400, "description": "Bad Request: there is no document in the request"}
    return 200, {"ok": True, "result": {"chat": {"id": int(chat)}, "document": {"file_name": documents[0]["filename"]}}}


def discord(request):
    """A Discord webhook: POST /api/webhooks/<id>/<token>, multipart with
    files[n], and `payload_json` (which, when present, is the message: the
    other fields are ignored) or `content`; 204, or 200 with the message
    when ?wait=true."""
    match = re.fullmatch(r"/api/webhooks/(\d+)/([^/]+)", request["path"])
    if not match:
        return 404, {"message": "404: Not Found", "code": 0}
    if match.group(2) != token:
        return 401, {"message": "Invalid Webhook Token", "code": 50027}
    files = [f for name, fs in request["files"].items() if re.fullmatch(r"files\[\d+\]", name) for f in fs]
    if "payload_json" in request["form"]:
        try:
            payload = json.loads(request["form"]["payload_json"][0])
        except ValueError:
            return 400, {"message": "Invalid Form Body", "code": 50035}
        if not isinstance(payload, dict):
            return 400, {"message": "Invalid Form Body", "code": 50035}
    else:
        payload = {"content": request["form"].get("content", [""])[0]}
    if not files and not payload.get("content"):
        return 400, {"message": "Cannot send an empty message", "code": 50006}
    if request["query"] != "wait=true":
        return 204, None
    return 200, {"content": payload.get("content", ""), "attachments": [{"filename": f["filename"], "size": len(f["bytes"])} for f in files]}


def webhook(request):
    """A Home Assistant (/api/webhook/<id>) or n8n (/webhook/<path>)
    webhook: unknown ids are 404 (n8n; Home Assistant logs them), the form
    is the trigger's data."""
    match = re.fullmatch(r"/(?:api/)?webhook/([^/]+)", request["path"])
    if not match or match.group(1) != token:
        return 404, {"message": "webhook not registered"}
    if request["method"] not in ("POST", "PUT"):
        return 405, None
    return 200, None


def anything(request):
    return int(config.get("status", 200)), None


CHECKS = {"paperless": paperless, "ntfy": ntfy, "telegram": telegram, "discord": discord, "webhook": webhook, "any": anything}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = self.headers.get("Content-Length")
        raw = self.rfile.read(int(length)) if length is not None else b""
        path, _, query = self.path.partition("?")
        headers = [[k, v] for k, v in self.headers.items()]
        environ = {
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
        }
        form, files = {}, {}
        if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            _, parsed_form, parsed_files = parse_form_data(environ)
            form = {k: parsed_form.getlist(k) for k in parsed_form.keys()}
            for name in parsed_files.keys():
                files[name] = []
                for storage in parsed_files.getlist(name):
                    files[name].append({"filename": storage.filename, "content_type": storage.content_type, "bytes": storage.read()})
        request = {
            "method": self.command,
            "path": path,
            "query": query,
            "raw": raw,
            "form": form,
            "files": files,
            "header": lambda name: self.headers.get(name),
        }
        status, answer = CHECKS[service](request)
        body = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        report = {
            "method": self.command,
            "path": path,
            "query": query,
            "headers": headers,
            "form": form,
            "files": {k: [{"filename": f["filename"], "content_type": f["content_type"], "data": hexed(f["bytes"])} for f in fs] for k, fs in files.items()},
            "body": hexed(raw),
            "status": status,
            "answer": answer,
        }
        with lock:
            print(json.dumps(report), flush=True)

    do_POST = do_PUT = do_GET = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if config.get("tls"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*config["tls"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
