//! `--http` against the APIs users send files to: each README recipe's
//! command line, sent to a stand-in of the service (tests/support/http_api.py)
//! that checks the request as the service does (multipart parsed by
//! werkzeug) and reports it, field by field; and the rest of `--http`:
//! PUT, header templates, TLS with a private CA, bad settings, the
//! configuration file, several destinations.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Relay, ReportingServer, assert_fails, curl_upload, ftprelay, stderr, upload, write};

/// The stand-in API server.
const API: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/http_api.py");

/// A relay for `user` sending every upload to `url`, with `extra` flags.
fn http_relay(user: &str, url: &str, extra: &[&str]) -> Relay {
    let mut args = vec!["--user", user, "--http", url];
    args.extend_from_slice(extra);
    Relay::start(&args)
}

support::on_every_runtime!(
    recipe_paperless_ngx({
        let api = Api::start(json!({"service": "paperless", "token": "0123456789abcdef"}));
        let url = format!("{}/api/documents/post_document/", api.base);
        let relay = http_relay(
            "scanner:pw",
            &url,
            &[
                "--http-header",
                "Authorization: Token 0123456789abcdef",
                "--http-form",
                "document",
                "--http-field",
                "title={stem}",
            ],
        );
        let work = tempfile::tempdir().expect("dir");
        let pdf = b"%PDF-1.4 a scan\n%%EOF\n";
        let file = write(work.path(), "local", pdf);
        let output = curl_upload(&relay, "scanner:pw", "Invoice%20March.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["method"], "POST");
        assert_eq!(
            header(&request, "authorization"),
            Some("Token 0123456789abcdef")
        );
        assert_eq!(fields(&request, "title"), ["Invoice March"]);
        let document = file_of(&request, "document");
        assert_eq!(document.filename, "Invoice March.pdf");
        assert_eq!(document.content_type, "application/pdf");
        assert_eq!(document.data, pdf);
        assert_eq!(header(&request, "x-ftprelay-user"), Some("scanner"));

        // A wrong token: paperless answers 401, a refusal that a retry of
        // the same request cannot change: the device 550, the log why.
        let relay = http_relay(
            "scanner:pw",
            &url,
            &[
                "--http-header",
                "Authorization: Token wrong",
                "--http-form",
                "document",
            ],
        );
        let output = curl_upload(&relay, "scanner:pw", "a.pdf", &file);
        assert!(stderr(&output).contains("550"), "{}", stderr(&output));
        assert_eq!(api.next()["status"], 401);
        let mut relay = relay;
        let line = relay.wait_for_line("delivery failed");
        assert!(
            line.contains("401") && line.contains("Invalid token"),
            "{line}"
        );
    }),
    recipe_ntfy({
        let api = Api::start(json!({"service": "ntfy"}));
        let url = format!("{}/my-camera-topic", api.base);
        let relay = http_relay(
            "cam:pw",
            &url,
            &[
                "--http-method",
                "PUT",
                "--http-header",
                "Filename: {name}",
                "--http-header",
                "Title: {user} uploaded {name}",
            ],
        );
        let work = tempfile::tempdir().expect("dir");
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 0xFF, 0xD9,
        ];
        let file = write(work.path(), "local", &jpeg);
        let output = curl_upload(&relay, "cam:pw", "snap%201.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["method"], "PUT");
        assert_eq!(request["path"], "/my-camera-topic");
        assert_eq!(header(&request, "filename"), Some("snap 1.jpg"));
        assert_eq!(header(&request, "title"), Some("cam uploaded snap 1.jpg"));
        assert_eq!(header(&request, "content-type"), Some("image/jpeg"));
        assert_eq!(header(&request, "content-length"), Some("13"));
        assert_eq!(body(&request), jpeg);
        assert_eq!(request["answer"]["attachment"]["name"], "snap 1.jpg");
    }),
    recipe_telegram_send_document({
        let token = "123456:ABC-DEF1234ghIkl";
        let api = Api::start(json!({"service": "telegram", "token": token}));
        let url = format!("{}/bot{token}/sendDocument", api.base);
        let mut relay = http_relay(
            "cam:pw",
            &url,
            &[
                "--http-form",
                "document",
                "--http-field",
                "chat_id=-1001234567890",
                "--http-field",
                "caption={name} from {user} at {peer}",
            ],
        );
        let output = upload(&relay, "cam:pw", "door.png", b"\x89PNG\r\n\x1a\nnot really");
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["answer"]["ok"], true);
        assert_eq!(fields(&request, "chat_id"), ["-1001234567890"]);
        assert_eq!(
            fields(&request, "caption"),
            ["door.png from cam at 127.0.0.1"]
        );
        let document = file_of(&request, "document");
        assert_eq!(document.filename, "door.png");
        assert_eq!(document.content_type, "image/png");
        assert_eq!(document.data, b"\x89PNG\r\n\x1a\nnot really");
        // The bot token is in the URL's path: never in the log.
        let line = relay.wait_for_line("delivered");
        assert!(!relay.log().contains("ABC-DEF"), "{line}");
    }),
    recipe_discord_webhook({
        let api = Api::start(json!({"service": "discord", "token": "wh-TOKEN"}));
        let url = format!("{}/api/webhooks/1234567890/wh-TOKEN?wait=true", api.base);
        let relay = http_relay(
            "cam:pw",
            &url,
            &[
                "--http-form",
                "files[0]",
                "--http-field",
                "content=New upload from {user}: {name}",
            ],
        );
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"GIF89a...");
        let output = curl_upload(&relay, "cam:pw", "motion.gif", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["query"], "wait=true");
        assert_eq!(
            fields(&request, "content"),
            ["New upload from cam: motion.gif"]
        );
        let attached = file_of(&request, "files[0]");
        assert_eq!(attached.filename, "motion.gif");
        assert_eq!(attached.content_type, "image/gif");
        assert_eq!(attached.data, b"GIF89a...");
        assert_eq!(
            request["answer"]["attachments"][0]["filename"],
            "motion.gif"
        );
        drop(relay);

        // payload_json (literal text: JSON is not escaped for values).
        let relay = http_relay(
            "cam:pw",
            &url,
            &[
                "--http-form",
                "files[0]",
                "--http-field",
                r#"payload_json={{"username": "ftprelay", "content": "a new upload"}}"#,
            ],
        );
        let output = curl_upload(&relay, "cam:pw", "motion.gif", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["answer"]["content"], "a new upload");
        assert_eq!(file_of(&request, "files[0]").data, b"GIF89a...");
    }),
    recipe_home_assistant_webhook({
        let api = Api::start(json!({"service": "webhook", "token": "ftprelay-snapshot"}));
        let url = format!("{}/api/webhook/ftprelay-snapshot", api.base);
        let relay = http_relay(
            "cam:pw",
            &url,
            &[
                "--http-form",
                "file",
                "--http-field",
                "user={user}",
                "--http-field",
                "name={name}",
                "--http-field",
                "size={size}",
            ],
        );
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"frame bytes");
        let output = curl_upload(&relay, "cam:pw", "front.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(request["path"], "/api/webhook/ftprelay-snapshot");
        assert_eq!(fields(&request, "user"), ["cam"]);
        assert_eq!(fields(&request, "name"), ["front.jpg"]);
        assert_eq!(fields(&request, "size"), ["11"]);
        let upload = file_of(&request, "file");
        assert_eq!(
            (upload.filename.as_str(), upload.content_type.as_str()),
            ("front.jpg", "image/jpeg")
        );
        assert_eq!(upload.data, b"frame bytes");
        // n8n's path: /webhook/<path>, the same request.
        let api = Api::start(json!({"service": "webhook", "token": "scans"}));
        let url = format!("{}/webhook/scans", api.base);
        let relay = http_relay("cam:pw", &url, &["--http-form", "file"]);
        let output = curl_upload(&relay, "cam:pw", "front.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(file_of(&api.next(), "file").data, b"frame bytes");
    }),
    http_put_with_templates_in_the_url_and_headers({
        let api = Api::start(json!({"service": "any", "status": 201}));
        let url = format!(
            "{}/store/{{user}}/{{path}}/{{name}}?size={{size}}",
            api.base
        );
        let relay = Relay::start(&[
            "--profile",
            "devices",
            "--user",
            "cam:pw",
            "--http",
            &url,
            "--http-method",
            "put",
            "--http-header",
            "X-Upload-Id: {id}",
            "--http-header",
            "X-Tag: one",
            "--http-header",
            "X-Tag: two",
            "--http-header",
            "Content-Type: application/x-camera",
        ]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"0123456789");
        let url = format!(
            "ftp://cam:pw@127.0.0.1:{}/NVR01/ch%201/a%20b%23.jpg",
            relay.addr.port()
        );
        let output = support::curl_creating_dirs(&file, &url);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["method"], "PUT");
        // Values percent-encoded in the URL; `/` between folders kept.
        assert_eq!(request["path"], "/store/cam/NVR01/ch%201/a%20b%23.jpg");
        assert_eq!(request["query"], "size=10");
        let id = header(&request, "x-upload-id").expect("the id header");
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        let tags: Vec<&str> = headers(&request, "x-tag");
        assert_eq!(tags, ["one", "two"]);
        // The operator's Content-Type replaces the one from the extension.
        assert_eq!(headers(&request, "content-type"), ["application/x-camera"]);
        assert_eq!(header(&request, "x-ftprelay-file-name"), Some("a b#.jpg"));
        assert_eq!(body(&request), b"0123456789");
    }),
    http_an_unreachable_server_is_451_with_a_log_line({
        // A port nobody listens on: bound, read, closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port")
            .port();
        let url = format!("http://127.0.0.1:{port}/hook");
        let mut relay = http_relay("cam:pw", &url, &[]);
        let output = upload(&relay, "cam:pw", "a.jpg", b"x");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.to_ascii_lowercase().contains("connect"), "{line}");
        assert!(relay.spool_is_empty());
    }),
    http_https_with_a_private_ca({
        let work = tempfile::tempdir().expect("dir");
        let (ca, cert, key) = private_ca(work.path());
        let api = Api::start(json!({"service": "any", "tls": [cert, key]}));
        let url = format!("{}/hook", api.base.replace("http://", "https://"));
        let file = write(work.path(), "local", b"secret scan");
        let relay = http_relay("cam:pw", &url, &["--trust-ca", &ca.display().to_string()]);
        let output = curl_upload(&relay, "cam:pw", "a.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(body(&request), b"secret scan");
        drop(relay);
        // Without the CA: the certificate is not trusted; no request.
        let mut relay = http_relay("cam:pw", &url, &[]);
        let output = curl_upload(&relay, "cam:pw", "a.pdf", &file);
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains("certificate"), "{line}");
        assert!(
            api.server.reports.try_recv().is_err(),
            "a request got through"
        );
        drop(relay);
        // The same CA from the configuration file's trust_ca.
        let config = format!(
            "trust_ca = [{:?}]\nhttp = {url:?}\n",
            ca.display().to_string()
        );
        let config = write(work.path(), "ftprelay.toml", config.as_bytes());
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--config",
            &config.display().to_string(),
        ]);
        let output = curl_upload(&relay, "cam:pw", "b.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(body(&api.next()), b"secret scan");
    }),
    http_and_dir_both_get_the_file({
        let api = Api::start(json!({"service": "any"}));
        let work = tempfile::tempdir().expect("dir");
        let archive = work.path().join("archive");
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--dir",
            &archive.display().to_string(),
            "--http",
            &format!("{}/in", api.base),
            "--http-form",
            "upload",
        ]);
        let file = write(work.path(), "local", b"both places");
        let output = curl_upload(&relay, "cam:pw", "a.txt", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(file_of(&api.next(), "upload").data, b"both places");
        assert_eq!(
            std::fs::read(archive.join("a.txt")).expect("stored"),
            b"both places"
        );
        drop(relay);
        // The HTTP destination fails: 451, though the folder got it.
        let failing = Api::start(json!({"service": "any", "status": 503}));
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--dir",
            &archive.display().to_string(),
            "--http",
            &format!("{}/in", failing.base),
        ]);
        let output = curl_upload(&relay, "cam:pw", "b.txt", &file);
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        assert_eq!(failing.next()["status"], 503);
        assert!(archive.join("b.txt").exists());
    }),
    http_from_the_configuration_file({
        let api = Api::start(json!({"service": "paperless", "token": "t0k"}));
        let other = Api::start(json!({"service": "any"}));
        let work = tempfile::tempdir().expect("dir");
        let config = write(
            work.path(),
            "ftprelay.toml",
            format!(
                r#"
http = "{other}/default"

[[users]]
name = "scanner"
password = "pw"

[[users.destinations]]
type = "http"
url = "{paperless}/api/documents/post_document/"
method = "POST"
headers = ["Authorization: Token t0k", "X-Note: from {{user}}"]
form = "document"
fields = ["title=Scan {{date}} {{stem}}"]

[[users]]
name = "plain"
password = "pw"

[[users]]
name = "cam"
password = "pw"

[[users.destinations]]
type = "http"
url = "{other}/put/{{name}}"
method = "PUT"
"#,
                other = other.base,
                paperless = api.base,
            )
            .as_bytes(),
        );
        let relay = Relay::start(&["--config", &config.display().to_string()]);
        let file = write(work.path(), "local", b"%PDF config");
        let output = curl_upload(&relay, "scanner:pw", "x.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = api.next();
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(header(&request, "x-note"), Some("from scanner"));
        let title = &fields(&request, "title")[0];
        assert!(
            title.starts_with("Scan 20") && title.ends_with(" x"),
            "{title}"
        );
        assert_eq!(file_of(&request, "document").data, b"%PDF config");
        let output = curl_upload(&relay, "cam:pw", "y.jpg", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = other.next();
        assert_eq!(
            (request["method"].as_str(), request["path"].as_str()),
            (Some("PUT"), Some("/put/y.jpg"))
        );
        assert_eq!(body(&request), b"%PDF config");
        // A user without destinations of their own: the default, `http = "URL"`.
        let output = curl_upload(&relay, "plain:pw", "z.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let request = other.next();
        assert_eq!(
            (request["method"].as_str(), request["path"].as_str()),
            (Some("POST"), Some("/default"))
        );
        assert_eq!(header(&request, "x-ftprelay-user"), Some("plain"));
    }),
);

#[test]
fn a_bad_http_setting_is_a_start_up_error() {
    for (flags, mentions) in [
        (&["--http-header", "Bad Name: x"][..], "http header"),
        (&["--http-header", "X-Thing: a\u{7}"][..], "http header"),
        (&["--http-header", "no colon"][..], "Name: value"),
        (
            &["--http-header", "Content-Length: 9"][..],
            "sets this header itself",
        ),
        (&["--http-header", "X: {nope}"][..], "{nope}"),
        (&["--http-method", "GET"][..], "POST or PUT"),
        (
            &["--http-form", "doc", "--http-field", "novalue"][..],
            "NAME=VALUE",
        ),
        (
            &[
                "--http-form",
                "doc",
                "--http-header",
                "Content-Type: text/plain",
            ][..],
            "Content-Type",
        ),
    ] {
        let mut args = vec!["--user", "a:b", "--http", "http://127.0.0.1:9/x"];
        args.extend_from_slice(flags);
        assert_fails(&ftprelay(&args, ""), 2, mentions);
    }
    for (url, mentions) in [
        ("ftp://example.org/", "http:// or https://"),
        ("https://x/{usr}", "{usr}"),
    ] {
        assert_fails(
            &ftprelay(&["--user", "a:b", "--http", url], ""),
            2,
            mentions,
        );
    }
}

/// The stand-in API, killed when the test ends.
struct Api {
    server: ReportingServer,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Api {
    fn start(config: Value) -> Self {
        let server = ReportingServer::start(API, &[config.to_string().as_ref()]);
        Self {
            base: format!("http://127.0.0.1:{}", server.port),
            server,
        }
    }

    /// The next request the server got (within 10 s).
    fn next(&self) -> Value {
        self.server
            .next_within(Duration::from_secs(10), "request to the API")
    }
}

/// Every value of the header `name` (case-insensitive).
fn headers<'a>(request: &'a Value, name: &str) -> Vec<&'a str> {
    request["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|pair| {
            pair[0]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|pair| pair[1].as_str())
        .collect()
}

/// The one value of the header `name`; `None` when absent (two are a
/// failure).
fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    let all = headers(request, name);
    assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
    all.first().copied()
}

/// The values of the form field `name`.
fn fields(request: &Value, name: &str) -> Vec<String> {
    request["form"][name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A file of the form, as the server parsed it.
struct FormFile {
    filename: String,
    content_type: String,
    data: Vec<u8>,
}

/// The one file under `name`.
fn file_of(request: &Value, name: &str) -> FormFile {
    let files = request["files"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no file {name}: {request}"));
    assert_eq!(files.len(), 1, "{request}");
    let text = |key: &str| files[0][key].as_str().unwrap_or_default().to_owned();
    FormFile {
        filename: text("filename"),
        content_type: text("content_type"),
        data: decode(&text("data")),
    }
}

/// The raw body.
fn body(request: &Value) -> Vec<u8> {
    decode(request["body"].as_str().expect("body"))
}

/// Hex digits (what the server prints bytes in).
fn decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

/// A private CA, and a certificate it signed for 127.0.0.1: the CA's
/// PEM file, the certificate's and its key's.
fn private_ca(dir: &std::path::Path) -> (std::path::PathBuf, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftprelay test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("certificate");
    let ca_file = write(dir, "ca.pem", ca.pem().as_bytes());
    let cert_file = write(dir, "cert.pem", cert.pem().as_bytes());
    let key_file = write(dir, "key.pem", key.serialize_pem().as_bytes());
    (
        ca_file,
        cert_file.display().to_string(),
        key_file.display().to_string(),
    )
}
