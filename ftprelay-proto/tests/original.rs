//! One test for each failure of the Python original (the `ftprelay` module
//! this project re-creates), showing the session does not have it. Measured
//! on the original: it answers `226` before processing, so a failed
//! processing never reaches the device; a processor exception leaves the
//! file on disk and wedges the session; a login without an upload leaves an
//! empty directory behind; only one upload per login works; sessions of the
//! same user share one processor and crash each other; one slow processor
//! blocks every session; a client whose data connection is reset gets `226`
//! and the processor a truncated file; it has no limits and no timeouts.

mod support;

use std::time::Duration;

use ftprelay_proto::{Config, Output, ProcessError, TransferEnd};
use support::{Harness, codes};

/// The original answers 226 before processing, so a failure never reaches
/// the device.
#[test]
fn the_226_waits_for_the_processor_and_a_failure_reaches_the_device() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    s.advance(Duration::from_secs(5));
    s.expect_replies(&[]);
    s.processed(upload, Err(ProcessError::transient("mail server down")));
    s.expect_replies(&[451]);
}

/// The original leaves the file on disk and wedges the session when the
/// processor raises.
#[test]
fn a_processor_error_neither_wedges_the_session_nor_keeps_the_file() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    // The adapter deletes the spool file when processing returns, whatever
    // it returned; the session asks for nothing else to be kept.
    s.processed(upload, Err(ProcessError::transient("boom")));
    s.expect_replies(&[451]);
    let (upload, _) = s.upload_until_processing("b.jpg", 10);
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
}

/// The original creates a directory per login, left empty by a login
/// without upload.
#[test]
fn a_login_without_upload_asks_the_adapter_for_nothing() {
    let mut s = Harness::new();
    s.login("bob", "secret");
    s.send("PWD\r\nQUIT\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![257, 221]);
    assert!(
        outputs
            .iter()
            .all(|o| matches!(o, Output::Reply(_) | Output::CloseControl))
    );
}

/// Only one upload per login works in the original.
#[test]
fn many_uploads_per_login() {
    let mut s = Harness::logged_in(Config::default());
    for i in 0..5 {
        let name = format!("page-{i}.pdf");
        let (upload, file_name) = s.upload_until_processing(&name, 100 + i);
        assert_eq!(file_name, name.as_bytes());
        s.processed(upload, Ok(()));
        s.expect_replies(&[226]);
    }
}

/// Sessions of one user share one processor in the original and crash each
/// other: here each session is its own state, and what one line gets never
/// depends on another session.
#[test]
fn sessions_of_one_user_do_not_affect_each_other() {
    let story = |s: &mut Harness, fail: bool| {
        let (upload, _) = s.upload_until_processing("a.jpg", 10);
        let result = if fail {
            Err(ProcessError::transient("x"))
        } else {
            Ok(())
        };
        s.processed(upload, result);
        s.replies()
    };
    let mut alone = Harness::logged_in(Config::default());
    let expected = story(&mut alone, false);

    let mut first = Harness::logged_in(Config::default());
    let mut second = Harness::logged_in(Config::default());
    // Interleaved: the first session's upload fails while the second's is
    // in flight, and the first then quits.
    let (upload, _) = first.upload_until_processing("a.jpg", 10);
    let got = {
        let (upload2, _) = second.upload_until_processing("a.jpg", 10);
        first.processed(upload, Err(ProcessError::transient("x")));
        first.send("QUIT\r\n");
        second.processed(upload2, Ok(()));
        second.replies()
    };
    assert_eq!(got, expected);
    assert_eq!(first.replies(), vec![451, 221]);
    assert_eq!(story(&mut second, true), vec![451]);
}

/// One slow processor blocks every session in the original, even new
/// connections' banners.
#[test]
fn a_slow_processor_delays_no_other_session() {
    let mut slow = Harness::logged_in(Config::default());
    let (upload, _) = slow.upload_until_processing("big.pdf", 10);
    // While it processes, a new session is greeted, logs in and uploads.
    let mut other = Harness::new();
    other.login("alice", "pw");
    let (other_upload, _) = other.upload_until_processing("small.jpg", 1);
    other.processed(other_upload, Ok(()));
    other.expect_replies(&[226]);
    slow.processed(upload, Ok(()));
    slow.expect_replies(&[226]);
}

/// A reset data connection gets 226 in the original, and the processor a
/// truncated file.
#[test]
fn a_reset_data_connection_is_426_and_never_processed() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.transfer_ended(upload, TransferEnd::Reset);
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![426]);
    assert!(outputs.contains(&Output::Discard(upload)));
    assert!(!outputs.iter().any(|o| matches!(o, Output::Process(_))));
}

/// The original has no limits and no timeouts it exposes: every one is a
/// bounded default here.
#[test]
fn every_limit_and_timeout_is_bounded_by_default() {
    let config = Config::default();
    assert!(config.max_line_len <= 4096);
    assert!(config.max_pending_input <= 64 * 1024);
    assert!(config.max_file_size <= 1 << 30);
    assert!(config.max_failed_logins <= 3);
    for timeout in [
        config.idle_timeout,
        config.data_timeout,
        config.transfer_stall_timeout,
        config.process_timeout,
        config.login_check_timeout,
        config.login_timeout,
        config.line_timeout,
    ] {
        assert!(timeout <= Duration::from_secs(300));
    }
    // And the idle timeout is enforced.
    let mut s = Harness::logged_in(config);
    s.advance(Duration::from_secs(300));
    assert_eq!(s.replies(), vec![421]);
}
