//! Timeouts and shutdown: idle sessions, slow login checks, the line
//! deadline, clock overflow, and what a shutdown does to a session.
//! In memory, with a virtual clock.

mod support;

use std::time::Duration;

use ftprelay_proto::{Config, Input, LoginVerdict, Output, TransferEnd};
use support::{Harness, codes};

#[test]
fn idle_sessions_are_closed_with_421() {
    let mut s = Harness::logged_in(Config::default());
    s.advance(Duration::from_secs(299));
    s.send("NOOP\r\n");
    s.expect_replies(&[200]);
    s.advance(Duration::from_secs(299));
    s.expect_replies(&[]);
    s.advance(Duration::from_secs(1));
    s.expect_replies_then_close(&[421]);
}

#[test]
fn a_slow_login_check_times_out_with_421() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\n");
    s.take();
    s.advance(Duration::from_secs(30));
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![421]);
    // The late verdict is ignored.
    s.input(Input::LoginChecked(LoginVerdict::ACCEPTED));
    assert_eq!(s.take(), vec![]);
}

#[test]
fn a_deadline_is_always_in_the_future() {
    let mut s = Harness::logged_in(Config::default());
    let now = s.adapter.now;
    assert_eq!(s.wait_deadline(), Some(now + Duration::from_secs(300)));
    s.pasv();
    assert_eq!(s.wait_deadline(), Some(now + Duration::from_secs(30)));
}

#[test]
fn shutdown_closes_an_idle_session_with_421() {
    let mut s = Harness::logged_in(Config::default());
    s.input(Input::Shutdown);
    s.expect_replies_then_close(&[421]);
    assert!(s.adapter.finished);
}

#[test]
fn shutdown_lets_the_upload_in_flight_finish_and_answers_it() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.send("NOOP\r\n");
    s.input(Input::Shutdown);
    assert_eq!(s.take(), vec![]);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 3 });
    assert!(matches!(
        s.take().as_slice(),
        [Output::CloseData, Output::Process(_)]
    ));
    s.processed(upload, Ok(()));
    // The upload's 226, then the shutdown's 421 instead of the queued NOOP.
    s.expect_replies_then_close(&[226, 421]);
}

#[test]
fn timeouts_of_forever_do_not_overflow_the_clock() {
    let config = support::config(|c| {
        c.idle_timeout = Duration::MAX;
        c.data_timeout = Duration::MAX;
        c.process_timeout = Duration::MAX;
        c.login_check_timeout = Duration::MAX;
        c.failed_login_delay = Duration::MAX;
    });
    let mut s = Harness::logged_in(config);
    let (upload, _) = s.upload_until_processing("a.jpg", 1);
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
    assert!(s.wait_deadline().is_some());
}

#[test]
fn a_client_that_never_logs_in_is_sent_away() {
    let mut s = Harness::new();
    s.send("USER bob\r\n");
    s.expect_replies(&[331]);
    s.advance(Duration::from_secs(59));
    s.expect_replies(&[]);
    s.advance(Duration::from_secs(1));
    s.expect_replies_then_close(&[421]);
}

#[test]
fn a_line_that_trickles_in_is_cut_off() {
    let mut s = Harness::logged_in(Config::default());
    // One byte a second: slow-loris.
    for byte in b"NOOP ".iter().cycle().take(29) {
        s.send_bytes(&[*byte]);
        s.advance(Duration::from_secs(1));
    }
    s.expect_replies(&[]);
    s.advance(Duration::from_secs(1));
    s.expect_replies_then_close(&[421]);
}

#[test]
fn whole_lines_reset_the_line_deadline() {
    let mut s = Harness::logged_in(Config::default());
    for _ in 0..100 {
        s.send("NOOP\r\n");
        s.advance(Duration::from_secs(10));
    }
    assert!(!s.adapter.finished);
}

#[test]
fn the_line_deadline_does_not_depend_on_how_reads_are_split() {
    let mut s = Harness::logged_in(Config::default());
    s.send("NOOP\r\nNO");
    s.advance(Duration::from_secs(20));
    // The first NO completes; a new line begins in the same read.
    s.send("OP\r\nNO");
    s.advance(Duration::from_secs(29));
    assert_eq!(
        s.replies(),
        vec![200, 200],
        "the new line has 30 s of its own"
    );
    s.advance(Duration::from_secs(1));
    assert_eq!(s.replies(), vec![421]);
}
