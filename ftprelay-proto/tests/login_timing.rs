//! A failed login is answered a fixed time after its PASS, however long the
//! check took: the reply's timing does not tell an unknown user from a
//! wrong password.

mod support;

use std::time::Duration;

use support::Harness;

/// PASS at the origin, rejected after `check`: when the `530` comes.
fn answered_after(check: Duration) -> Duration {
    let mut s = Harness::with_config(support::config(|c| {
        c.failed_login_delay = Duration::from_secs(1);
    }));
    s.send("USER bob\r\n");
    s.expect_replies(&[331]);
    let passed_at = s.adapter.now;
    s.send("PASS wrong\r\n");
    s.expect_login_check("bob");
    s.advance(check);
    s.reject_login();
    if s.replies() == [530] {
        return s.adapter.now - passed_at;
    }
    let deadline = s.wait_deadline().expect("the delay's deadline");
    s.advance(deadline - s.adapter.now);
    s.expect_replies(&[530]);
    deadline - passed_at
}

#[test]
fn the_failure_delay_counts_from_the_pass_not_from_the_verdict() {
    let instant = answered_after(Duration::ZERO);
    let hashed = answered_after(Duration::from_millis(50));
    let slow = answered_after(Duration::from_millis(800));
    assert_eq!(instant, Duration::from_secs(1));
    assert_eq!(hashed, instant);
    assert_eq!(slow, instant);
    // A check slower than the delay is answered at once.
    assert_eq!(
        answered_after(Duration::from_millis(1500)),
        Duration::from_millis(1500)
    );
}
