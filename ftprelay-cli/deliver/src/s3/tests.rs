//! The destination against a scripted S3 on loopback: what goes on the
//! wire (a length, not chunks; a signature; the key's encoding), and the
//! failures a real server rarely shows (an error inside a 200, a delivery
//! dropped halfway), each of which must leave no upload behind.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;

use crate::fields::Fields;

/// One request the scripted server read.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    /// Lowercase names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the scripted server does with a request: answer `(status, body)`
/// or, with `None`, never answer.
type Script = fn(&Seen) -> Option<(u16, String)>;

/// A scripted S3 on 127.0.0.1; the requests it read come on the receiver.
fn server(script: Script) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (sender, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let sender = sender.clone();
            std::thread::spawn(move || serve(stream, script, &sender));
        }
    });
    (url, seen)
}

fn serve(stream: TcpStream, script: Script, sender: &mpsc::Sender<Seen>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_owned();
        let target = words.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut request = Seen {
            method,
            target,
            headers,
            body: Vec::new(),
        };
        let answer = script(&request);
        let Some((status, body)) = answer else {
            // Stall: the request is seen, never answered.
            let _ = sender.send(request);
            std::thread::sleep(std::time::Duration::from_secs(30));
            return;
        };
        request.body = vec![0; length];
        if reader.read_exact(&mut request.body).is_err() {
            return;
        }
        let _ = sender.send(request);
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nETag: \"etag-{}\"\r\n\r\n{body}",
            body.len(),
            length
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn destination(url: &str, endpoint: &str) -> S3 {
    S3::builder(url)
        .expect("url")
        .credentials(Credentials::new("KEYID", "secret"))
        .endpoint(endpoint)
        .part_size(S3::MIN_PART_SIZE)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build")
}

fn spooled(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("spooled");
    std::fs::write(&path, bytes).expect("write");
    (dir, path)
}

fn store(s3: &S3, path: &std::path::Path, key: &str) -> Result<(), ProcessError> {
    smol::block_on(runtime::on_tokio(upload::store(
        s3.inner.clone(),
        path.to_owned(),
        key.to_owned(),
        "text/plain".to_owned(),
    )))
    .and_then(|stored| stored)
}

fn next(seen: &mpsc::Receiver<Seen>) -> Seen {
    seen.recv_timeout(Duration::from_secs(10))
        .expect("a request")
}

#[test]
fn keys_come_from_the_template() {
    let fields = Fields::for_test("scan 1.pdf", &["NVR01", "ch1"]);
    let at_root = Fields::for_test("scan 1.pdf", &[]);
    let key = |url: &str, fields: &Fields| destination(url, "http://127.0.0.1:9").key(fields);
    assert_eq!(
        key("s3://bucket", &fields).as_deref(),
        Ok("NVR01/ch1/scan 1.pdf")
    );
    assert_eq!(key("s3://bucket/", &at_root).as_deref(), Ok("scan 1.pdf"));
    assert_eq!(
        key("s3://bucket/in/", &fields).as_deref(),
        Ok("in/scan 1.pdf")
    );
    assert_eq!(
        key("s3://bucket/{user}/{date}/{stem}.{ext}", &fields).as_deref(),
        Ok("demo/2026-12-02/scan 1.pdf")
    );
    // `..` made of a placeholder's empty value is refused, not sent.
    let no_ext = Fields::for_test("README", &[]);
    assert!(key("s3://bucket/x/..{ext}/y", &no_ext).is_err());
}

#[test]
fn a_repeated_delivery_writes_the_same_key() {
    let first = Fields::for_test("scan.pdf", &["NVR01"]);
    let repeat = Fields::for_test_restored("scan.pdf", &["NVR01"], first.id()).expect("valid");
    let other = Fields::for_test("scan.pdf", &["NVR01"]);
    let s3 = destination(
        "s3://bucket/{date}/{time}-{id}-{name}",
        "http://127.0.0.1:9",
    );
    let key = s3.key(&first).expect("key");
    assert_eq!(key, format!("2026-12-02/040506-{}-scan.pdf", first.id()));
    assert_eq!(s3.key(&repeat), Ok(key.clone()));
    assert_ne!(s3.key(&other), Ok(key));
}

#[test]
fn a_file_too_large_for_the_bucket_is_552_and_other_answers_451() {
    let answer = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
    for (status, body, reply) in [
        (400, answer("EntityTooLarge"), 552),
        (413, String::new(), 552),
        (403, answer("AccessDenied"), 451),
        (403, answer("RequestTimeTooSkewed"), 451),
        (404, answer("NoSuchBucket"), 451),
        (400, answer("InvalidArgument"), 451),
        (503, answer("SlowDown"), 451),
    ] {
        let error = upload::failure(status, &body, String::new());
        assert_eq!(error.reply().code().as_u16(), reply, "{status} {body}");
    }
}

#[test]
fn bad_settings_are_errors_naming_them() {
    for (url, mentions) in [
        ("http://bucket/key", "s3://"),
        ("s3:///key", "no bucket"),
        ("s3://b/key", "3 to 63"),
        ("s3://bu cket/key", "characters"),
        ("s3://bucket/{nope}", "{nope}"),
        ("s3://bucket/a/../b", "`..`"),
    ] {
        let error = S3::builder(url).expect_err(url);
        assert!(error.to_string().contains(mentions), "{url}: {error}");
    }
    let builder = S3::builder("s3://bucket").expect("url");
    let error = builder.clone().build().expect_err("no credentials");
    assert!(error.to_string().contains("AWS_ACCESS_KEY_ID"), "{error}");
    let builder = builder.credentials(Credentials::new("K", "S"));
    for (bad, mentions) in [
        (builder.clone().part_size(1 << 20), "part size"),
        (builder.clone().endpoint("ftp://host"), "http"),
        (builder.clone().endpoint("http://k:s@host"), "password"),
        (builder.clone().region("us east"), "region"),
    ] {
        let error = bad.build().expect_err(mentions);
        assert!(error.to_string().contains(mentions), "{error}");
    }
}

#[test]
fn aws_is_virtual_hosted_and_custom_endpoints_path_style() {
    let aws = Endpoint::aws("eu-west-1", "cams");
    assert!(aws.virtual_host);
    assert_eq!(aws.host, "s3.eu-west-1.amazonaws.com");
    // A dotted bucket would not match AWS's wildcard certificate.
    assert!(!Endpoint::aws("eu-west-1", "cams.example").virtual_host);
    let minio = Endpoint::custom("https://minio.lan:443/s3/").expect("endpoint");
    assert!(!minio.virtual_host);
    assert_eq!(minio.host, "minio.lan");
    assert_eq!(minio.base_path, "/s3");
    let port = Endpoint::custom("http://[::1]:9000").expect("endpoint");
    assert_eq!(port.host, "[::1]:9000");
}

#[test]
fn a_small_file_is_one_signed_put_with_a_length() {
    let (endpoint, seen) = server(|_| Some((200, String::new())));
    let s3 = destination("s3://bucket", &endpoint);
    let (_dir, path) = spooled(b"hello");
    store(&s3, &path, "in/a b+c.txt").expect("stored");
    let put = next(&seen);
    assert_eq!(put.method, "PUT");
    assert_eq!(put.target, "/bucket/in/a%20b%2Bc.txt");
    assert_eq!(put.body, b"hello");
    assert_eq!(put.header("content-length"), Some("5"));
    assert_eq!(put.header("transfer-encoding"), None);
    assert_eq!(put.header("content-type"), Some("text/plain"));
    assert_eq!(put.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    let authorization = put.header("authorization").expect("signed");
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=KEYID/")
            && authorization.contains("/us-east-1/s3/aws4_request")
            && !authorization.contains("secret"),
        "{authorization}"
    );
}

#[test]
fn an_error_answer_is_a_451_naming_the_code() {
    let (endpoint, _seen) = server(|_| {
        Some((
            404,
            "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"
                .to_owned(),
        ))
    });
    let s3 = destination("s3://bucket", &endpoint);
    let (_dir, path) = spooled(b"x");
    let error = store(&s3, &path, "k").expect_err("no bucket");
    assert!(!error.is_permanent());
    assert!(
        error.reason().contains("404")
            && error
                .reason()
                .contains("NoSuchBucket: The specified bucket does not exist"),
        "{error}"
    );
    // Nothing listens on port 9 (discard) of loopback.
    let s3 = destination("s3://bucket", "http://127.0.0.1:9");
    let error = store(&s3, &path, "k").expect_err("unreachable");
    assert!(error.reason().contains("cannot reach"), "{error}");
}

/// CreateMultipartUpload's answer, for the scripts.
fn created() -> Option<(u16, String)> {
    Some((
        200,
        "<InitiateMultipartUploadResult><UploadId>UP1</UploadId></InitiateMultipartUploadResult>"
            .to_owned(),
    ))
}

#[test]
fn an_error_inside_a_200_fails_and_aborts() {
    let (endpoint, seen) = server(|request| match request.method.as_str() {
        "POST" if request.target.ends_with("?uploads=") => created(),
        "POST" => Some((
            200,
            "<Error><Code>InternalError</Code><Message>try again</Message></Error>".to_owned(),
        )),
        _ => Some((200, String::new())),
    });
    let s3 = destination("s3://bucket", &endpoint);
    let (_dir, path) = spooled(&vec![7; (11 << 20) + 3]);
    let error = store(&s3, &path, "big.bin").expect_err("an error in the 200");
    assert!(
        error.reason().contains("InternalError: try again"),
        "{error}"
    );
    let requests: Vec<Seen> = seen.try_iter().collect();
    let summary: Vec<(String, String, usize)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.target.clone(), r.body.len()))
        .collect();
    let expected = [
        ("POST", "/bucket/big.bin?uploads=", 0),
        ("PUT", "/bucket/big.bin?partNumber=1&uploadId=UP1", 5 << 20),
        ("PUT", "/bucket/big.bin?partNumber=2&uploadId=UP1", 5 << 20),
        (
            "PUT",
            "/bucket/big.bin?partNumber=3&uploadId=UP1",
            (1 << 20) + 3,
        ),
        (
            "POST",
            "/bucket/big.bin?uploadId=UP1",
            requests.get(4).map_or(0, |r| r.body.len()),
        ),
        ("DELETE", "/bucket/big.bin?uploadId=UP1", 0),
    ]
    .map(|(m, t, n)| (m.to_owned(), t.to_owned(), n));
    assert_eq!(summary, expected);
    let list = String::from_utf8_lossy(&requests[4].body); // the list of parts
    assert!(
        list.contains("<Part><PartNumber>3</PartNumber><ETag>\"etag-1048579\"</ETag></Part>"),
        "{list}"
    );
}

#[test]
fn a_delivery_dropped_halfway_aborts_its_upload() {
    let (endpoint, seen) = server(|request| match request.method.as_str() {
        "POST" => created(),
        // The second part is never answered.
        "PUT" if request.target.contains("partNumber=2") => None,
        _ => Some((200, String::new())),
    });
    let s3 = destination("s3://bucket", &endpoint);
    let (_dir, path) = spooled(&vec![1; 11 << 20]);
    let delivery = runtime::on_tokio(upload::store(
        s3.inner.clone(),
        path.clone(),
        "big.bin".to_owned(),
        "application/octet-stream".to_owned(),
    ));
    let waiting = std::thread::spawn(move || {
        smol::block_on(async {
            let mut delivery = std::pin::pin!(delivery);
            // Poll until the stalled part is seen, then give up on it.
            for _ in 0..500 {
                if futures_lite::future::poll_once(delivery.as_mut())
                    .await
                    .is_some()
                {
                    panic!("the delivery finished");
                }
                if seen
                    .recv_timeout(Duration::from_millis(20))
                    .is_ok_and(|r| r.target.contains("partNumber=2"))
                {
                    return seen;
                }
            }
            panic!("the second part was never sent");
        })
    });
    let seen = waiting.join().expect("the delivery was given up on");
    let abort = next(&seen);
    assert_eq!(
        (abort.method.as_str(), abort.target.as_str()),
        ("DELETE", "/bucket/big.bin?uploadId=UP1")
    );
}
