//! The control connection's commands and framing: FEAT, the verbs that
//! are refused, the plumbing replies, over-long lines, Telnet sequences,
//! pipelining and end of file.
//! In memory, with a virtual clock.

mod support;

use ftprelay_proto::{Config, Input, LoginVerdict, Output};
use support::{Harness, codes};

#[test]
fn feat_lists_only_what_works() {
    let mut s = Harness::new();
    s.send("FEAT\r\n");
    let outputs = s.take();
    let [Output::Reply(reply)] = outputs.as_slice() else {
        panic!("expected one reply, got {outputs:?}");
    };
    assert_eq!(
        reply.to_bytes(),
        b"211-Features:\r\n EPRT\r\n EPSV\r\n PASV\r\n UTF8\r\n211 End\r\n"
    );
}

#[test]
fn every_denied_verb_gets_550_and_never_an_upload() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    for line in [
        "RETR x",
        "LIST",
        "LIST -la",
        "NLST",
        "MLSD",
        "MLST x",
        "SIZE x",
        "MDTM x",
        "DELE x",
        "RMD x",
        "XRMD x",
        "MKD x",
        "XMKD x",
        "RNFR x",
        "RNTO y",
        "SITE CHMOD 644 x",
        "APPE x",
        "CWD sub",
        "XCWD sub",
        "STAT x",
        "MFMT 20240101000000 x",
    ] {
        s.send(&format!("{line}\r\n"));
        let outputs = s.take();
        assert_eq!(codes(&outputs), vec![550], "{line}");
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Receive(_) | Output::Process(_))),
            "{line} started an upload"
        );
    }
}

#[test]
fn plumbing_replies() {
    let mut s = Harness::logged_in(Config::default());
    for (line, code) in [
        ("SYST", 215),
        ("NOOP", 200),
        ("PWD", 257),
        ("XPWD", 257),
        ("CWD /", 250),
        ("CWD .", 250),
        ("XCWD /a/..", 250),
        ("CDUP", 250),
        ("XCUP", 250),
        ("TYPE I", 200),
        ("TYPE i", 200),
        ("Type I", 200),
        ("TYPE A", 200),
        ("TYPE A N", 200),
        ("TYPE L 8", 200),
        ("TYPE E", 504),
        ("TYPE L 16", 504),
        ("MODE S", 200),
        ("MODE s", 200),
        ("MODE B", 504),
        ("STRU F", 200),
        ("STRU R", 504),
        ("ALLO 1234", 200),
        ("REST 0", 350),
        ("REST 100", 504),
        ("OPTS UTF8 ON", 200),
        ("OPTS MLST type;", 501),
        ("STAT", 211),
        ("HELP", 214),
        ("HELP STOR", 214),
        ("ABOR", 226),
        ("REIN", 502),
        ("ACCT x", 502),
        ("SMNT x", 502),
        ("CCC", 502),
        ("USER alice", 530),
        ("PASS again", 503),
        ("FOO bar", 500),
        ("", 500),
        ("STOR", 501),
        ("PORT 1,2,3", 501),
        ("EPRT |9|x|1|", 522),
    ] {
        s.send(&format!("{line}\r\n"));
        assert_eq!(s.replies(), vec![code], "{line:?}");
    }
    s.send("PWD\r\n");
    let outputs = s.take();
    let [Output::Reply(reply)] = outputs.as_slice() else {
        panic!("expected one reply");
    };
    assert_eq!(reply.to_bytes(), b"257 \"/\" is the current directory.\r\n");
}

#[test]
fn an_over_long_line_is_answered_once_and_the_session_goes_on() {
    let mut s = Harness::logged_in(Config::default());
    let long = "X".repeat(10_000);
    s.send(&format!("STOR {long}"));
    s.send(&format!("{long}\r\nNOOP\r\n"));
    s.expect_replies(&[500, 200]);
}

#[test]
fn telnet_sequences_inside_a_command_are_stripped() {
    let mut s = Harness::logged_in(Config::default());
    s.send_bytes(b"NO\xFF\xF4OP\r\n\xFF\xFB\x01SYST\r\n");
    s.expect_replies(&[200, 215]);
}

#[test]
fn pipelined_commands_before_the_greeting_was_read_are_all_answered() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\nTYPE I\r\nPWD\r\nQUIT\r\n");
    assert_eq!(s.replies(), vec![331]);
    s.input(Input::LoginChecked(LoginVerdict::ACCEPTED));
    s.expect_replies(&[230, 200, 257, 221]);
}

#[test]
fn too_much_pipelined_input_pauses_reading() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\n");
    s.take();
    assert!(s.adapter.session.wants_control_bytes());
    s.send(&"NOOP\r\n".repeat(3000));
    assert!(!s.adapter.session.wants_control_bytes());
    s.input(Input::LoginChecked(LoginVerdict::ACCEPTED));
    assert_eq!(s.replies().len(), 3001);
    assert!(s.adapter.session.wants_control_bytes());
}

#[test]
fn end_of_file_answers_the_commands_received_then_closes() {
    // `printf 'USER u\r\nPASS p\r\nNOOP\r\n' | nc -N host 21`: the client
    // half-closes while the login is being checked.
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\nNOOP\r\n");
    s.take();
    s.input(Input::ControlEof);
    assert!(!s.adapter.session.wants_control_bytes());
    s.input(Input::LoginChecked(LoginVerdict::ACCEPTED));
    s.expect_replies_then_close(&[230, 200]);
    assert!(s.adapter.finished);
}

#[test]
fn a_last_line_without_its_line_end_counts_at_end_of_file() {
    let mut s = Harness::logged_in(Config::default());
    s.send("NOOP\r\nQUIT");
    s.expect_replies(&[200]);
    s.input(Input::ControlEof);
    s.expect_replies_then_close(&[221]);
}
