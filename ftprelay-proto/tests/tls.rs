//! FTPS in the core: AUTH TLS, PBSZ/PROT, and the policies that require them.

mod support;

use ftprelay_proto::{Config, Output, TransferEnd};
use support::{Harness, codes};

fn with_tls(change: impl FnOnce(&mut Config)) -> Config {
    support::config(|c| {
        change(c);
    })
}

#[test]
fn auth_tls_answers_234_then_starts_tls_and_drops_pipelined_plaintext() {
    let mut s = Harness::offering_tls(with_tls(|_| {}));
    // A man in the middle appends a command after AUTH TLS, in plaintext.
    s.send("AUTH TLS\r\nUSER mallory\r\nPASS x\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![234]);
    assert_eq!(outputs.last(), Some(&Output::StartTls));
    assert!(s.adapter.session.is_tls_active());
    // What comes now is what the adapter decrypted.
    s.login("bob", "secret");
}

#[test]
fn pbsz_and_prot_after_auth() {
    let mut s = Harness::offering_tls(with_tls(|_| {}));
    s.send("PBSZ 0\r\nPROT P\r\nAUTH TLS\r\n");
    assert_eq!(s.replies(), vec![503, 503, 234]);
    s.send("PBSZ 0\r\nPROT P\r\nPROT S\r\nPROT C\r\nAUTH TLS\r\nAUTH KERBEROS_V4\r\nCCC\r\n");
    // AUTH again: TLS is active already. CCC (before login: 530).
    assert_eq!(s.replies(), vec![200, 200, 536, 200, 503, 503, 530]);
    s.login("bob", "secret");
    s.send("CCC\r\n");
    s.expect_replies(&[534]);
}

#[test]
fn data_connections_follow_prot() {
    let mut s = Harness::offering_tls(with_tls(|_| {}));
    s.send("AUTH TLS\r\n");
    s.take();
    s.login("bob", "secret");
    s.send("PBSZ 0\r\nPROT P\r\n");
    s.expect_replies(&[200, 200]);
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send("STOR a.jpg\r\n");
    let outputs = s.take();
    let Some(Output::Receive(request)) = outputs.last() else {
        panic!("expected Receive: {outputs:?}");
    };
    assert!(request.tls, "PROT P: the data connection is under TLS");
}

#[test]
fn feat_lists_tls_only_when_it_works() {
    let mut s = Harness::offering_tls(with_tls(|_| {}));
    s.send("FEAT\r\n");
    let outputs = s.take();
    let [Output::Reply(reply)] = outputs.as_slice() else {
        panic!("one reply");
    };
    assert!(
        reply.text().contains("AUTH TLS")
            && reply.text().contains("PBSZ")
            && reply.text().contains("PROT")
    );
    let mut plain = Harness::new();
    plain.send("FEAT\r\nAUTH TLS\r\n");
    let outputs = plain.take();
    let Output::Reply(reply) = &outputs[0] else {
        panic!("a reply");
    };
    assert!(!reply.text().contains("AUTH"));
    assert_eq!(codes(&outputs), vec![211, 502]);
}

#[test]
fn required_tls_refuses_a_plain_login() {
    let mut s = Harness::offering_tls(with_tls(|c| c.require_tls = true));
    s.send("USER bob\r\nPASS secret\r\n");
    s.expect_replies(&[530, 530]);
    s.send("AUTH TLS\r\n");
    s.take();
    s.login("bob", "secret");
}

#[test]
fn required_protection_refuses_clear_data() {
    let mut s = Harness::offering_tls(with_tls(|c| c.require_protected_data = true));
    s.send("AUTH TLS\r\n");
    s.take();
    s.login("bob", "secret");
    s.pasv();
    s.send("STOR a.jpg\r\nPROT C\r\n");
    s.expect_replies(&[521, 534]);
    s.send("PBSZ 0\r\nPROT P\r\nSTOR a.jpg\r\n");
    assert_eq!(s.replies(), vec![200, 200, 150]);
}

#[test]
fn implicit_tls_sessions_start_protected() {
    let config = std::sync::Arc::new(with_tls(|_| {}));
    let session = ftprelay_proto::Session::new(
        config,
        support::origin(),
        support::addr(support::RELAY),
        support::addr(support::CLIENT),
    )
    .with_tls_active();
    assert!(session.is_tls_active());
    // Implicit FTPS clients that never send PROT start TLS on data
    // connections: they are protected until PROT C.
    assert!(session.is_data_protected());
}

#[test]
fn prot_decides_whether_data_connections_are_protected() {
    let mut s = Harness::offering_tls(with_tls(|_| {}));
    s.send("AUTH TLS\r\n");
    s.take();
    assert!(
        !s.adapter.session.is_data_protected(),
        "explicit: clear until PROT P"
    );
    s.login("bob", "secret");
    s.send("PBSZ 0\r\nPROT P\r\n");
    s.expect_replies(&[200, 200]);
    assert!(s.adapter.session.is_data_protected());
    s.send("PROT C\r\n");
    s.expect_replies(&[200]);
    assert!(!s.adapter.session.is_data_protected());
}

#[test]
fn failed_data_tls_and_slow_uploads_are_answered_and_discarded() {
    for (end, code) in [
        (TransferEnd::TlsHandshakeFailed, 426),
        (TransferEnd::TlsSessionNotResumed, 522),
        (TransferEnd::TooSlow, 426),
    ] {
        let mut s = Harness::offering_tls(with_tls(|_| {}));
        s.login("bob", "secret");
        let upload = s.receiving("a.jpg");
        s.transfer_ended(upload, end);
        let outputs = s.take();
        assert_eq!(codes(&outputs), vec![code], "{end:?}");
        assert!(
            outputs.contains(&Output::Discard(upload)),
            "{end:?}: {outputs:?}"
        );
        assert!(!outputs.iter().any(|o| matches!(o, Output::Process(_))));
    }
}
