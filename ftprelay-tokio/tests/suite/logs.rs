//! What an operator finds in the log: a span per session, the transcript at
//! debug level with the password masked, one info line per upload.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::support::TestRelay;

super::register::suite_tests!(
    logs,
    the_log_has_the_transcript_without_the_password_and_a_line_per_upload(async {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        let relay = TestRelay::start().await;
        let mut client = relay.client().await;
        client.login("bob", "secret").await;
        assert_eq!(client.upload("report.pdf", b"12345").await.code, 226);
        assert_eq!(client.cmd("QUIT").await.code, 221);
        assert!(client.is_closed().await);
        let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8 log");
        assert!(
            log.contains("PASS ****"),
            "the transcript shows PASS masked:\n{log}"
        );
        assert!(
            !log.contains("secret"),
            "the password leaked into the log:\n{log}"
        );
        assert!(
            log.contains("STOR report.pdf"),
            "the transcript has the commands:\n{log}"
        );
        assert!(
            log.contains("226 Transfer complete."),
            "the transcript has the replies:\n{log}"
        );
        let upload_line = log
            .lines()
            .find(|line| {
                line.contains("INFO") && line.contains("upload") && line.contains("report.pdf")
            })
            .unwrap_or_else(|| panic!("no info line for the upload:\n{log}"));
        for field in [
            "user=bob",
            "size=5",
            "outcome=\"processed\"",
            "duration_ms=",
        ] {
            assert!(
                upload_line.contains(field),
                "{field} missing from {upload_line}"
            );
        }
        assert!(
            upload_line.contains("session{id=1 peer=127.0.0.1:"),
            "the session span, numbered: {upload_line}"
        );
    }),
);

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
