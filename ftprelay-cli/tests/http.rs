//! The processors that send the file on: `--http` (a 2xx is 226, a 4xx
//! but 408 and 429 is 550 or 552, anything else 451, a request given up on
//! is never completed; each request names its upload in
//! `Idempotency-Key`) and `--discard`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{KillOnDrop, Relay, curl_upload, curl_verbose, stderr, write};

support::on_every_runtime!(
    http_posts_the_file_and_a_2xx_is_226({
        let (url, received) = http_server(200);
        let relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"post me");
        let output = curl_upload(&relay, "demo:demo", "cam%201.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let (head, body) = received
            .recv_timeout(Duration::from_secs(10))
            .expect("the request");
        assert!(head.starts_with("POST /hook "), "{head}");
        assert_eq!(body, b"post me");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("x-ftprelay-file-name: cam 1.jpg"), "{head}");
        assert!(lower.contains("x-ftprelay-user: demo"), "{head}");
        assert!(lower.contains("x-ftprelay-size: 7"), "{head}");
        assert!(relay.spool_is_empty());
    }),
    http_non_2xx_is_451({
        let (url, received) = http_server(500);
        let relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        let output = curl_upload(&relay, "demo:demo", "a.jpg", &file);
        assert!(received.recv_timeout(Duration::from_secs(10)).is_ok());
        assert!(!output.status.success());
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
    }),
    http_a_redirect_is_not_followed_and_is_451({
        // 301 to https is the most common redirect there is. Followed (as ureq
        // did), a 301/302/303 became a GET without the file, its 200 a 226.
        for status in [301, 302, 303, 307] {
            let mut server = KillOnDrop(
                Command::new("python3")
                    .args(["-c", REDIRECTING_HTTP_SERVER, &status.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("python3"),
            );
            let mut lines = BufReader::new(server.0.stdout.take().expect("stdout")).lines();
            let port = lines.next().expect("PORT line").expect("read");
            let url = format!("http://127.0.0.1:{}/hook", port.trim_start_matches("PORT "));
            let relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
            let work = tempfile::tempdir().expect("dir");
            let file = write(work.path(), "local", b"do not lose me");
            let output = curl_upload(&relay, "demo:demo", "a.jpg", &file);
            assert!(
                stderr(&output).contains("451"),
                "{status}: {}",
                stderr(&output)
            );
            drop(relay);
            drop(server);
            let requests: Vec<String> = lines.map_while(Result::ok).collect();
            assert_eq!(requests, ["POST /hook"], "{status}");
        }
    }),
    discard_logs_and_drops({
        let mut relay = Relay::start(&["--user", "demo:demo", "--discard"]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"drop me");
        let output = curl_upload(&relay, "demo:demo", "tmp.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let line = relay.wait_for_line("discarded");
        assert!(
            line.contains("tmp.bin") && line.contains("size=7"),
            "{line}"
        );
        assert!(relay.spool_is_empty());
    }),
    http_a_request_given_up_on_never_completes_its_body({
        let mut server = Command::new("python3")
            .args(["-c", SLOW_HTTP_SERVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut out = BufReader::new(server.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("PORT");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .expect("PORT n")
            .to_owned();
        let url = format!("http://127.0.0.1:{port}/hook");
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--process-timeout",
            "2",
            "--http",
            &url,
        ]);
        let work = tempfile::tempdir().expect("dir");
        // Far more than socket buffers hold: the body is still being sent when
        // the relay gives up.
        let file = write(work.path(), "local", &vec![b'x'; 32 << 20]);
        let output = curl_upload(&relay, "demo:demo", "big.bin", &file);
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        // The device was told 451: now the server reads all it can get.
        server
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"fast\n")
            .expect("fast");
        line.clear();
        out.read_line(&mut line).expect("RECEIVED");
        let counts: Vec<u64> = line
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        assert_eq!(counts.len(), 2, "{line}");
        assert!(
            counts[0] < counts[1],
            "the server got the whole body after the device was told 451: {line}"
        );
        let _ = server.wait();
    }),
);

support::on_tokio_only!(
    http_every_request_names_its_upload_in_an_idempotency_key({
        let (url, received) = http_server(200);
        let mut relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"once");
        let output = curl_upload(&relay, "demo:demo", "a.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let (head, _) = received
            .recv_timeout(Duration::from_secs(10))
            .expect("the request");
        let keys = header_values(&head, "idempotency-key");
        assert_eq!(keys.len(), 1, "{head}");
        let key = &keys[0];
        assert!(
            key.len() == 16
                && key
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{head}"
        );
        // The upload's id, as the log names it.
        let line = relay.wait_for_line("delivered");
        assert!(line.contains(key.as_str()), "{key}: {line}");
    }),
    http_an_idempotency_key_the_operator_gives_is_sent_instead({
        let (url, received) = http_server(200);
        let relay = Relay::start(&[
            "--user",
            "demo:demo",
            "--http",
            &url,
            "--http-header",
            "Idempotency-Key: scan-{name}",
        ]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"once");
        let output = curl_upload(&relay, "demo:demo", "a.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let (head, _) = received
            .recv_timeout(Duration::from_secs(10))
            .expect("the request");
        assert_eq!(
            header_values(&head, "idempotency-key"),
            ["scan-a.jpg"],
            "{head}"
        );
    }),
    http_a_4xx_is_permanent_but_408_429_and_5xx_pass({
        // (the server's answer, the device's reply): a request the server
        // calls wrong is never sent again (550, 552 for a file too large);
        // one it says to send later is retried (451).
        let cases = [
            (400, "< 550"),
            (401, "< 550"),
            (404, "< 550"),
            (413, "< 552"),
            (408, "< 451"),
            (429, "< 451"),
            (500, "< 451"),
            (503, "< 451"),
        ];
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        for (status, reply) in cases {
            let (url, received) = http_server(status);
            let mut relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
            let output = curl_verbose(&relay, "demo:demo", "a.jpg", &file);
            assert!(
                received.recv_timeout(Duration::from_secs(10)).is_ok(),
                "{status}"
            );
            assert!(
                stderr(&output).contains(reply),
                "{status}: {}",
                stderr(&output)
            );
            let line = relay.wait_for_line("delivery failed");
            assert!(line.contains(&status.to_string()), "{status}: {line}");
        }
    }),
);

/// The values of the header `name` (lower case) in a request's head.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
        .collect()
}

/// A one-request HTTP server: answers `status` and returns what it got.
fn http_server(status: u16) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = sender.send((head, body));
    });
    (url, received)
}

/// A python3 HTTP server that answers a POST with the redirect status of
/// its argument (to `/landed`, which a GET would get 200 from); prints
/// `PORT n`, then each request's method and path.
const REDIRECTING_HTTP_SERVER: &str = r#"
import http.server, sys
status = int(sys.argv[1])
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        print("POST " + self.path, flush=True)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(status)
        self.send_header("Location", "/landed")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        print("GET " + self.path, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print("PORT %d" % server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A python3 HTTP server that reads request bodies slowly, until a line on
/// its standard input says to read the rest at full speed; it prints
/// `PORT n` when listening and `RECEIVED got OF length` when the body
/// ended (complete, or the connection closed).
const SLOW_HTTP_SERVER: &str = r#"
import http.server, sys, threading, time
fast = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), fast.set()), daemon=True).start()
class Slow(http.server.BaseHTTPRequestHandler):
    timeout = 20
    def do_POST(self):
        length = int(self.headers["Content-Length"])
        got = 0
        while got < length:
            chunk = self.rfile.read(min(65536, length - got))
            if not chunk:
                break
            got += len(chunk)
            if not fast.is_set():
                time.sleep(0.05)
        print(f"RECEIVED {got} OF {length}", flush=True)
        if got == length:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
print(f"PORT {server.server_address[1]}", flush=True)
server.handle_request()
"#;
