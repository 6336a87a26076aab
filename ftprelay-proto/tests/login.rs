//! Logging in: USER and PASS, the delay and limit after failures, what
//! is allowed before a login, lock-outs.
//! In memory, with a virtual clock.

mod support;

use std::time::Duration;

use ftprelay_proto::{Input, LoginVerdict, Output};
use support::{Harness, codes};

#[test]
fn user_is_always_answered_331() {
    let mut s = Harness::new();
    for user in ["bob", "nobody-here", "root", "anonymous"] {
        s.send(&format!("USER {user}\r\n"));
        s.expect_replies(&[331]);
    }
}

#[test]
fn failed_logins_are_delayed_then_limited() {
    let mut s = Harness::new();
    for attempt in 1..=3 {
        s.send("USER bob\r\n");
        s.expect_replies(&[331]);
        s.send("PASS nope\r\n");
        s.expect_login_check("bob");
        s.reject_login();
        // Nothing before the delay has passed.
        s.expect_replies(&[]);
        s.advance(Duration::from_millis(999));
        s.expect_replies(&[]);
        s.advance(Duration::from_millis(1));
        if attempt < 3 {
            s.expect_replies(&[530]);
        } else {
            s.expect_replies_then_close(&[421]);
        }
    }
    assert!(s.adapter.finished);
}

#[test]
fn commands_pipelined_behind_a_failed_login_wait_for_its_delay() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS nope\r\nUSER bob\r\nPASS again\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![331]);
    assert!(matches!(outputs.last(), Some(Output::CheckLogin(_))));
    s.reject_login();
    s.expect_replies(&[]);
    s.advance(Duration::from_secs(1));
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![530, 331]);
    assert!(matches!(outputs.last(), Some(Output::CheckLogin(_))));
}

#[test]
fn before_login_only_login_plumbing_is_accepted() {
    let mut s = Harness::new();
    for (line, code) in [
        ("NOOP", 200),
        ("SYST", 215),
        ("FEAT", 211),
        ("HELP", 214),
        ("OPTS UTF8 ON", 200),
        ("AUTH TLS", 502),
        ("PBSZ 0", 503),
        ("PROT P", 503),
        ("PASS x", 503),
        ("PASV", 530),
        ("EPSV", 530),
        ("PORT 127,0,0,1,4,1", 530),
        ("STOR x", 530),
        ("CWD /", 530),
        ("PWD", 530),
        ("TYPE I", 530),
        ("LIST", 530),
        ("STAT", 530),
        ("ABOR", 530),
    ] {
        s.send(&format!("{line}\r\n"));
        assert_eq!(s.replies(), vec![code], "{line}");
    }
    s.send("QUIT\r\n");
    s.expect_replies(&[221]);
}

#[test]
fn auth_without_tls_is_refused_and_the_session_goes_on() {
    let mut s = Harness::new();
    s.send("AUTH TLS\r\n");
    s.expect_replies(&[502]);
    s.login("bob", "secret");
    s.send("NOOP\r\n");
    s.expect_replies(&[200]);
}

#[test]
fn a_locked_out_address_is_answered_421() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS guess\r\n");
    s.take();
    s.input(Input::LoginChecked(LoginVerdict::LockedOut));
    s.expect_replies_then_close(&[421]);
}
