//! `--mail-to`: each upload mailed, attached, through a real SMTP server
//! (aiosmtpd, `tests/servers/smtp_server.py`), which parses the MIME the
//! way a mail client does; the tests compare what a user would see: the
//! addresses, the subject, the attachment's name, type and bytes.

mod support;

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Relay, assert_fails, curl_upload, curl_verbose, ftprelay, stderr, upload, write};

/// Binary content with every byte value, CR and LF among them.
fn binary() -> Vec<u8> {
    (0..4096u32).map(|n| (n * 7 % 256) as u8).collect()
}

/// A relay for user `demo:pw` mailing every upload to `me@example.org`
/// from `relay@example.org` through `smtp`, with `extra` flags.
fn mail_relay(smtp: &str, extra: &[&str]) -> Relay {
    let mut args = vec![
        "--user",
        "demo:pw",
        "--mail-to",
        "me@example.org",
        "--mail-from",
        "relay@example.org",
        "--smtp",
        smtp,
    ];
    args.extend_from_slice(extra);
    Relay::start(&args)
}

support::on_every_runtime!(
    mail_plain_smtp_delivers_the_file_attached({
        let server = SmtpServer::start(&[]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let relay = Relay::start(&[
            "--user",
            "scanner:pw",
            "--mail-to",
            "office@example.org",
            "--mail-to",
            "Archive <archive@example.org>",
            "--mail-from",
            "Scanner <scanner@example.org>",
            "--smtp",
            &smtp,
        ]);
        let work = tempfile::tempdir().expect("dir");
        let content = binary();
        let file = write(work.path(), "local", &content);
        let output = curl_upload(&relay, "scanner:pw", "%C3%9Cberweisung%201.pdf", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1, "{messages:?}");
        let message = &messages[0];
        assert_eq!(message.value("envelope_from"), "scanner@example.org");
        assert_eq!(
            message.values("envelope_to"),
            ["office@example.org", "archive@example.org"]
        );
        assert_eq!(message.value("from"), "Scanner <scanner@example.org>");
        assert!(
            message.value("to").contains("office@example.org"),
            "{message:?}"
        );
        assert!(
            message.value("to").contains("archive@example.org"),
            "{message:?}"
        );
        assert_eq!(message.value("subject"), "Überweisung 1.pdf from scanner");
        assert_eq!(message.value("tls"), "no");
        assert_eq!(
            message.attachments,
            [(
                "application/pdf".to_owned(),
                "Überweisung 1.pdf".to_owned(),
                content
            )]
        );
        for needle in ["Überweisung 1.pdf", "4096 bytes", "scanner", "127.0.0.1"] {
            assert!(
                message.body.contains(needle),
                "{needle:?} not in {:?}",
                message.body
            );
        }
        assert!(relay.spool_is_empty());
    }),
    mail_subject_template_and_content_type_from_the_extension({
        let server = SmtpServer::start(&[]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--mail-to",
            "me@example.org",
            "--mail-from",
            "cam@example.org",
            "--smtp",
            &smtp,
            "--mail-subject",
            "Snapshot {stem} ({ext}, {size} B) – Kamera",
        ]);
        let output = upload(
            &relay,
            "cam:pw",
            "front.jpg",
            b"\xff\xd8\xff\xe0 not really a jpeg",
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].value("subject"),
            "Snapshot front (jpg, 22 B) – Kamera"
        );
        assert_eq!(messages[0].attachments[0].0, "image/jpeg");
        assert_eq!(messages[0].attachments[0].1, "front.jpg");
    }),
    mail_starttls_required_with_a_private_ca({
        let work = tempfile::tempdir().expect("dir");
        let tls = Pki::new(work.path());
        let server = SmtpServer::start(&tls.server_args(&["--require-starttls"]));
        let smtp = format!("smtp://127.0.0.1:{}?tls=required", server.port);
        let relay = mail_relay(&smtp, &["--trust-ca", &tls.ca.display().to_string()]);
        let content = binary();
        let file = write(work.path(), "local", &content);
        let output = curl_upload(&relay, "demo:pw", "scan.png", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].value("tls"), "yes");
        assert_eq!(
            messages[0].attachments,
            [("image/png".to_owned(), "scan.png".to_owned(), content)]
        );
    }),
    mail_starttls_without_the_ca_is_451_and_nothing_is_sent({
        let work = tempfile::tempdir().expect("dir");
        let tls = Pki::new(work.path());
        let server = SmtpServer::start(&tls.server_args(&["--require-starttls"]));
        let smtp = format!("smtp://127.0.0.1:{}?tls=required", server.port);
        let mut relay = mail_relay(&smtp, &[]);
        let file = write(work.path(), "local", b"secret scan");
        let output = curl_upload(&relay, "demo:pw", "scan.pdf", &file);
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains("certificate"), "{line}");
        assert!(server.messages().is_empty());
    }),
    mail_tls_required_but_not_offered_is_451({
        let server = SmtpServer::start(&[]);
        let smtp = format!("smtp://127.0.0.1:{}?tls=required", server.port);
        let mut relay = mail_relay(&smtp, &[]);
        let output = upload(&relay, "demo:pw", "scan.pdf", b"not in plain text");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains("STARTTLS") || line.contains("TLS"), "{line}");
        assert!(server.messages().is_empty());
    }),
    mail_implicit_tls_with_a_private_ca({
        let work = tempfile::tempdir().expect("dir");
        let tls = Pki::new(work.path());
        let server = SmtpServer::start(&tls.server_args(&["--implicit-tls"]));
        let smtp = format!("smtps://127.0.0.1:{}", server.port);
        let relay = mail_relay(&smtp, &["--trust-ca", &tls.ca.display().to_string()]);
        let file = write(work.path(), "local", b"over TLS");
        let output = curl_upload(&relay, "demo:pw", "notes.txt", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].value("tls"), "yes");
        assert_eq!(
            messages[0].attachments,
            [(
                "text/plain".to_owned(),
                "notes.txt".to_owned(),
                b"over TLS".to_vec()
            )]
        );
    }),
    mail_auth_logs_in_and_the_password_is_never_logged({
        let server = SmtpServer::start(&["--auth", "scan@example.org:s3cr3t-pw"]);
        let smtp = format!(
            "smtp://scan%40example.org:s3cr3t-pw@127.0.0.1:{}",
            server.port
        );
        let mut relay = Relay::start(&[
            "--user",
            "demo:pw",
            "--mail-to",
            "me@example.org",
            "--mail-from",
            "scan@example.org",
            "--smtp",
            &smtp,
        ]);
        let output = upload(&relay, "demo:pw", "a.pdf", b"logged in");
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].value("auth"), "scan@example.org");
        relay.wait_for_line("delivered");
        let log = relay.log();
        assert!(!log.contains("s3cr3t"), "{log}");
    }),
    mail_names_that_look_like_encoded_words_stay_literal({
        // `=?utf-8?b?…?=` decodes to "invoice\r\nBcc: x@evil.org": a mail
        // client must show the literal name, never decode it.
        let server = SmtpServer::start(&[]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let relay = mail_relay(&smtp, &[]);
        let name = "%3D%3Futf-8%3Fb%3FaW52b2ljZQ0KQmNjOiB4QGV2aWwub3Jn%3F%3D.pdf";
        let output = upload(&relay, "demo:pw", name, b"x");
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        let seen = format!("{:?}", messages[0]);
        assert!(!seen.contains("Bcc"), "decoded: {seen}");
        assert!(!seen.contains("evil.org"), "decoded: {seen}");
        assert!(seen.contains("aW52b2ljZQ0KQmNjOiB4QGV2aWwub3Jn"), "{seen}");
    }),
    mail_a_wrong_password_is_451({
        let server = SmtpServer::start(&["--auth", "scan:right-pw"]);
        let smtp = format!("smtp://scan:wrong-pw@127.0.0.1:{}", server.port);
        let mut relay = Relay::start(&[
            "--user",
            "demo:pw",
            "--mail-to",
            "me@example.org",
            "--mail-from",
            "scan@example.org",
            "--smtp",
            &smtp,
        ]);
        let output = upload(&relay, "demo:pw", "a.pdf", b"x");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains("535"), "{line}");
        assert!(server.messages().is_empty());
        assert!(!relay.log().contains("wrong-pw"), "{}", relay.log());
    }),
    mail_a_file_over_the_limit_is_552_and_nothing_is_sent({
        let server = SmtpServer::start(&[]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let mut relay = mail_relay(&smtp, &["--mail-max-size", "1K"]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", &[b'x'; 1025]);
        let output = curl_verbose(&relay, "demo:pw", "big.bin", &file);
        assert!(stderr(&output).contains("< 552"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(
            line.contains("1025 bytes") && line.contains("1024"),
            "{line}"
        );
        assert!(server.messages().is_empty());
        // At the limit is not over it.
        let file = write(work.path(), "local", &[b'x'; 1024]);
        let output = curl_upload(&relay, "demo:pw", "big.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(server.messages().len(), 1);
    }),
    mail_a_server_552_is_552_and_a_refused_message_550({
        let server = SmtpServer::start(&["--answer-data", "552 5.3.4 Message too big for system"]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let mut relay = mail_relay(&smtp, &[]);
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        let output = curl_verbose(&relay, "demo:pw", "a.pdf", &file);
        assert!(stderr(&output).contains("< 552"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains("too big"), "{line}");
        drop(relay);
        drop(server);

        // Content the server refuses for good: permanent, never retried.
        let server = SmtpServer::start(&["--answer-data", "554 5.7.1 Rejected by policy"]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let mut relay = mail_relay(&smtp, &[]);
        let output = curl_verbose(&relay, "demo:pw", "a.pdf", &file);
        assert!(stderr(&output).contains("< 550"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(
            line.contains("554") && line.contains("Rejected by policy"),
            "{line}"
        );
    }),
    mail_a_refused_sender_or_recipient_is_550_and_a_4xx_451({
        // (the server's flag, its answer, the device's reply)
        let cases = [
            ("--answer-rcpt", "550 5.1.1 No such user here", "< 550"),
            (
                "--answer-mail",
                "553 5.7.1 Sender address rejected",
                "< 550",
            ),
            (
                "--answer-rcpt",
                "450 4.2.1 Mailbox busy, try later",
                "< 451",
            ),
            ("--answer-mail", "421 4.3.2 Service shutting down", "< 451"),
            // Authentication required: the relay's settings, not the file.
            (
                "--answer-mail",
                "530 5.7.0 Authentication required",
                "< 451",
            ),
        ];
        let work = tempfile::tempdir().expect("dir");
        let file = write(work.path(), "local", b"x");
        for (flag, answer, reply) in cases {
            let server = SmtpServer::start(&[flag, answer]);
            let smtp = format!("smtp://127.0.0.1:{}", server.port);
            let mut relay = mail_relay(&smtp, &[]);
            let output = curl_verbose(&relay, "demo:pw", "a.pdf", &file);
            assert!(
                stderr(&output).contains(reply),
                "{answer}: {}",
                stderr(&output)
            );
            let line = relay.wait_for_line("delivery failed");
            let code = &answer[..3];
            assert!(line.contains(code), "{answer}: {line}");
            assert!(server.messages().is_empty());
        }
    }),
    mail_an_unreachable_server_is_451({
        // A port nothing listens on: bound, read back, closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        let smtp = format!("smtp://127.0.0.1:{port}");
        let mut relay = mail_relay(&smtp, &[]);
        let output = upload(&relay, "demo:pw", "a.pdf", b"x");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        let line = relay.wait_for_line("delivery failed");
        assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    }),
    mail_given_up_on_is_never_sent_afterwards({
        // Every reply 0.7 s late: each step is within the SMTP timeout
        // (1 s, for a 2 s processing timeout), the whole exchange is not.
        // The relay gives up at 2 s; the exchange must stop then, not
        // finish the message after the device was told 451.
        let server = SmtpServer::start(&["--delay-replies", "0.7"]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let relay = Relay::start(&[
            "--user",
            "demo:pw",
            "--process-timeout",
            "2",
            "--mail-to",
            "me@example.org",
            "--mail-from",
            "relay@example.org",
            "--smtp",
            &smtp,
        ]);
        let output = upload(&relay, "demo:pw", "a.pdf", b"too late");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        support::wait_until(
            "the SMTP connection to close",
            || server.file("closed").exists(),
            || relay.log(),
        );
        assert!(server.messages().is_empty(), "{:?}", server.messages());
    }),
    mail_from_the_config_file({
        let server = SmtpServer::start(&["--auth", "u:p"]);
        let work = tempfile::tempdir().expect("dir");
        let config = format!(
            r#"
[[users]]
name = "scanner"
password = "pw"

[[users.destinations]]
type = "mail"
to = ["office@example.org", "boss@example.org"]
smtp = "smtp://u:p@127.0.0.1:{port}"
from = "Scanner <scanner@example.org>"
subject = "[scan] {{name}}"
max_size = "1M"
"#,
            port = server.port
        );
        let config_path = write(work.path(), "ftprelay.toml", config.as_bytes());
        let relay = Relay::start(&["--config", &config_path.display().to_string()]);
        let content = binary();
        let file = write(work.path(), "local", &content);
        let output = curl_upload(&relay, "scanner:pw", "page%202.tiff", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].value("subject"), "[scan] page 2.tiff");
        assert_eq!(
            messages[0].values("envelope_to"),
            ["office@example.org", "boss@example.org"]
        );
        assert_eq!(messages[0].value("auth"), "u");
        assert_eq!(
            messages[0].attachments,
            [("image/tiff".to_owned(), "page 2.tiff".to_owned(), content)]
        );
    }),
    mail_a_server_sending_an_endless_line_is_451_in_bounded_memory({
        // A server greeting with `220-` and then 128 MiB without a newline:
        // read as one reply line, that is 128 MiB (and more) of the relay's
        // memory for one upload. The relay must stop at its budget of the
        // server's bytes (1 MiB a session).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else {
                return 0;
            };
            // Bounded: a relay that stops reading fails the write in 10 s.
            let _ = peer.set_write_timeout(Some(Duration::from_secs(10)));
            let chunk = vec![b'a'; 1 << 16];
            let mut sent = 0usize;
            if peer.write_all(b"220-").is_ok() {
                while sent < 128 << 20 && peer.write_all(&chunk).is_ok() {
                    sent += chunk.len();
                }
            }
            sent
        });
        let smtp = format!("smtp://127.0.0.1:{port}");
        let mut relay = mail_relay(&smtp, &[]);
        let started = Instant::now();
        let output = upload(&relay, "demo:pw", "a.pdf", b"x");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        let line = relay.wait_for_line("delivery failed");
        let peak = relay.peak_rss_kib();
        assert!(peak < 100 * 1024, "peak RSS {peak} KiB: {line}");
        // The relay closed the connection: the server's writes failed
        // well before its 128 MiB.
        let sent = server.join().expect("server thread");
        assert!(sent < 64 << 20, "the relay read {sent} bytes");
        assert!(line.contains("more than 1048576 bytes"), "{line}");
    }),
    mail_and_dir_both_get_the_file({
        let server = SmtpServer::start(&[]);
        let smtp = format!("smtp://127.0.0.1:{}", server.port);
        let work = tempfile::tempdir().expect("dir");
        let archive = work.path().join("archive");
        let relay = mail_relay(&smtp, &["--dir", &archive.display().to_string()]);
        let content = binary();
        let file = write(work.path(), "local", &content);
        let output = curl_upload(&relay, "demo:pw", "both.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(archive.join("both.bin")).expect("archived"),
            content
        );
        let messages = server.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].attachments,
            [(
                "application/octet-stream".to_owned(),
                "both.bin".to_owned(),
                content
            )]
        );
    }),
);

#[test]
fn mail_bad_settings_are_one_line_and_status_2() {
    let base = ["--user", "a:b", "--mail-to", "me@example.org"];
    let with = |more: &[&str]| {
        let args: Vec<&str> = base.iter().chain(more).copied().collect();
        ftprelay(&args, "")
    };
    assert_fails(&with(&["--mail-from", "r@example.org"]), 2, "--smtp");
    assert_fails(&with(&["--smtp", "smtp://127.0.0.1"]), 2, "--mail-from");
    assert_fails(
        &with(&[
            "--smtp",
            "smtp://127.0.0.1",
            "--mail-from",
            "not an address",
        ]),
        2,
        "not an address",
    );
    assert_fails(
        &ftprelay(
            &[
                "--user",
                "a:b",
                "--mail-to",
                "me@@example.org",
                "--smtp",
                "smtp://127.0.0.1",
                "--mail-from",
                "r@example.org",
            ],
            "",
        ),
        2,
        "me@@example.org",
    );
    for (url, mentions) in [
        ("http://u:hunter2@127.0.0.1", "smtp://"),
        ("smtp://u:hunter2@127.0.0.1?tls=maybe", "tls="),
        ("127.0.0.1:25", "--smtp"),
    ] {
        let output = with(&["--mail-from", "r@example.org", "--smtp", url]);
        assert_fails(&output, 2, mentions);
        assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
    }
    assert_fails(
        &with(&[
            "--mail-from",
            "r@example.org",
            "--smtp",
            "smtp://127.0.0.1",
            "--mail-subject",
            "{nme}",
        ]),
        2,
        "{nme}",
    );
    assert_fails(
        &with(&[
            "--mail-from",
            "r@example.org",
            "--smtp",
            "smtp://127.0.0.1",
            "--mail-max-size",
            "lots",
        ]),
        2,
        "lots",
    );
    // The companions without --mail-to say what is missing.
    assert_fails(
        &ftprelay(&["--user", "a:b", "--smtp", "smtp://127.0.0.1"], ""),
        2,
        "--mail-to",
    );
}

/// `tests/servers/smtp_server.py`, killed when dropped; what it received is
/// in `out`.
struct SmtpServer {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl SmtpServer {
    fn start(args: &[&str]) -> Self {
        let out = tempfile::tempdir().expect("dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--out")
            .arg(out.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().expect("stdout");
        // The server's first line, or nothing if it died (EOF): bounded.
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let mut server = Self {
            child,
            port: 0,
            out,
        };
        server.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                panic!("the SMTP server did not start (is aiosmtpd installed?): {line:?}")
            });
        server
    }

    /// The messages received so far, in order. The server writes each
    /// before it answers the message's DATA, so a message the relay was
    /// told about is here.
    fn messages(&self) -> Vec<Received> {
        let mut messages = Vec::new();
        for n in 0.. {
            let head = self.out.path().join(format!("{n}.txt"));
            let Ok(text) = std::fs::read_to_string(&head) else {
                break;
            };
            let fields: Vec<(String, String)> = text
                .lines()
                .filter_map(|line| line.split_once(' '))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            let attachments = fields
                .iter()
                .filter(|(key, _)| key == "attachment")
                .map(|(_, value)| {
                    let mut parts = value.splitn(3, ' ');
                    let k = parts.next().expect("index");
                    let content_type = parts.next().expect("type").to_owned();
                    let name = parts.next().expect("name").to_owned();
                    let bytes =
                        std::fs::read(self.file(&format!("{n}.{k}.bin"))).expect("attachment");
                    (content_type, name, bytes)
                })
                .collect();
            messages.push(Received {
                body: std::fs::read_to_string(self.file(&format!("{n}.body"))).expect("body"),
                fields,
                attachments,
            });
        }
        messages
    }

    fn file(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as the server parsed it.
#[derive(Debug)]
struct Received {
    fields: Vec<(String, String)>,
    body: String,
    /// Content type, file name, bytes.
    attachments: Vec<(String, String, Vec<u8>)>,
}

impl Received {
    fn values(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[track_caller]
    fn value(&self, key: &str) -> &str {
        match self.values(key)[..] {
            [one] => one,
            ref other => panic!("{key}: {other:?} in {self:?}"),
        }
    }
}

/// A private CA and a server certificate for 127.0.0.1 signed by it.
struct Pki {
    ca: PathBuf,
    cert: String,
    key: String,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ftprelay test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let server_key = rcgen::KeyPair::generate().expect("key");
        let server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let server_cert = server_params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server certificate");
        let pki = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem").display().to_string(),
            key: dir.join("server.key").display().to_string(),
        };
        std::fs::write(&pki.ca, ca_cert.pem()).expect("write");
        std::fs::write(&pki.cert, server_cert.pem()).expect("write");
        std::fs::write(&pki.key, server_key.serialize_pem()).expect("write");
        pki
    }

    /// The server's flags for its certificate, then `more`.
    fn server_args<'a>(&'a self, more: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--tls-cert", &self.cert, "--tls-key", &self.key];
        args.extend_from_slice(more);
        args
    }
}
