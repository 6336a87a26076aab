//! What the relay logs: `--log-format json` (one object a line, for log
//! collectors) and, at debug level, each session's transcript (so that a
//! user can send us what a new device does), its password hidden.

mod support;

use serde_json::Value;
use support::{Relay, stderr, upload};

support::on_every_runtime!(
    json_logs_are_one_object_a_line_with_the_session_and_the_upload({
        let out = tempfile::tempdir().expect("out");
        let mut relay = Relay::start(&[
            "--user",
            "cam:pw",
            "--dir",
            out.path().to_str().expect("path"),
            "--log-format",
            "json",
        ]);
        let output = upload(&relay, "cam:pw", "snap.jpg", b"hello");
        assert!(output.status.success(), "{}", stderr(&output));
        let line = relay.wait_for_line("\"message\":\"upload\"");
        let event: Value = serde_json::from_str(&line).expect("a JSON object");
        assert_eq!(event["level"], "INFO", "{event}");
        assert_eq!(event["user"], "cam", "{event}");
        assert_eq!(event["name"], "snap.jpg", "{event}");
        assert_eq!(event["size"], 5, "{event}");
        assert_eq!(event["outcome"], "processed", "{event}");
        assert!(event["duration_ms"].is_u64(), "{event}");
        assert!(event["timestamp"].is_string(), "{event}");
        let peer = event["span"]["peer"].as_str().expect("the session's peer");
        assert!(peer.starts_with("127.0.0.1:"), "{event}");
        assert_eq!(event["span"]["user"], "cam", "{event}");
        assert!(
            event["span"]["id"].is_u64(),
            "the session's number: {event}"
        );
        let log = relay.log();
        for line in log.lines() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        }
    }),
    debug_logs_carry_the_sessions_transcript_with_its_password_hidden({
        let out = tempfile::tempdir().expect("out");
        let mut relay = Relay::start(&[
            "--user",
            "cam:s3cret",
            "--dir",
            out.path().to_str().expect("path"),
            "-v",
        ]);
        let output = upload(&relay, "cam:s3cret", "snap.jpg", b"hello");
        assert!(output.status.success(), "{}", stderr(&output));
        relay.wait_for_line("-> command=STOR snap.jpg");
        relay.wait_for_line("<- reply=226");
        let log = relay.log();
        assert!(log.contains("-> command=USER cam"), "{log}");
        assert!(log.contains("-> command=PASS ****"), "{log}");
        assert!(!log.contains("s3cret"), "the password is in the log: {log}");
    }),
);
