//! Transcript tests of the session: what a client sends, what it gets back,
//! and what the adapter is asked to do. In memory, with a virtual clock.

mod support;

use std::time::Duration;

use ftprelay_proto::{Config, DataEvent, Input, Output, ProcessError, SpoolFailure, TransferEnd};
use support::{Harness, addr, codes, expect_receive};

#[test]
fn a_full_upload_story() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("STOR scan.pdf\r\n");
    s.expect_replies(&[150]);
    let outputs = s.connect_from("127.0.0.1:40001");
    let upload = match outputs.as_slice() {
        [Output::AcceptDataConnection, Output::Receive(request)] => {
            assert_eq!(request.max_size, Config::default().max_file_size);
            request.upload
        }
        other => panic!("expected accept and receive, got {other:?}"),
    };
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1234 });
    let outputs = s.take();
    let [Output::CloseData, Output::Process(request)] = outputs.as_slice() else {
        panic!("expected processing, got {outputs:?}");
    };
    assert_eq!(request.name.as_ref(), b"scan.pdf");
    assert_eq!(request.file_name.as_ref(), b"scan.pdf");
    assert_eq!(request.user.as_ref(), b"bob");
    assert_eq!(request.peer, addr(support::CLIENT));
    assert_eq!(request.size, 1234);
    // No 226 until the processor has answered.
    assert_eq!(s.replies(), Vec::<u16>::new());
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
    s.send("QUIT\r\n");
    s.expect_replies_then_close(&[221]);
    assert!(s.driver.finished);
}

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
    assert!(s.driver.finished);
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
fn port_connects_out_after_150() {
    let mut s = Harness::logged_in(Config::default());
    s.send("PORT 127,0,0,1,156,64\r\n");
    s.expect_replies(&[200]);
    s.send("STOR a.jpg\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![150]);
    assert_eq!(outputs[1], Output::Connect(addr("127.0.0.1:40000")));
    let outputs = s.connect_from("127.0.0.1:40000");
    assert_eq!(outputs[0], Output::AcceptDataConnection);
    let upload = match &outputs[1] {
        Output::Receive(request) => request.upload,
        other => panic!("expected Receive, got {other:?}"),
    };
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 5 });
    assert!(matches!(
        s.take().as_slice(),
        [Output::CloseData, Output::Process(_)]
    ));
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
}

#[test]
fn a_failed_active_connect_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPRT |1|127.0.0.1|40000|\r\n");
    s.expect_replies(&[200]);
    s.send("STOR a.jpg\r\n");
    assert_eq!(s.replies(), vec![150]);
    s.data(DataEvent::ConnectFailed);
    s.expect_replies(&[425]);
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn port_and_eprt_refuse_third_hosts_and_privileged_ports() {
    let mut s = Harness::logged_in(Config::default());
    for line in [
        "PORT 127,0,0,2,156,64",
        "PORT 10,0,0,1,156,64",
        "PORT 127,0,0,1,0,21",
        "PORT 127,0,0,1,0,25",
        "EPRT |1|127.0.0.2|40000|",
        "EPRT |1|127.0.0.1|1023|",
        "EPRT |2|::1|40000|",
    ] {
        s.send(&format!("{line}\r\n"));
        let outputs = s.take();
        assert_eq!(codes(&outputs), vec![501], "{line}");
    }
    // Nothing was set up: STOR has no data channel.
    s.send("STOR x\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn a_passive_connection_from_another_address_is_refused_and_the_right_peer_still_served() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[150]);
    assert_eq!(
        s.connect_from("127.0.0.2:40001"),
        vec![Output::RefuseDataConnection]
    );
    let outputs = s.connect_from("127.0.0.1:40001");
    assert_eq!(outputs[0], Output::AcceptDataConnection);
    assert!(matches!(outputs[1], Output::Receive(_)));
}

#[test]
fn the_peer_check_can_be_switched_off_for_nat() {
    let config = support::config(|c| c.data_peer_must_match = false);
    let mut s = Harness::logged_in(config);
    s.pasv();
    assert_eq!(
        s.connect_from("172.17.0.1:40001"),
        vec![Output::AcceptDataConnection]
    );
}

#[test]
fn an_early_data_connection_is_kept_for_the_stor() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    assert_eq!(
        s.connect_from("127.0.0.1:40001"),
        vec![Output::AcceptDataConnection]
    );
    // A second connection on the same listener is one too many.
    assert_eq!(
        s.connect_from("127.0.0.1:40002"),
        vec![Output::RefuseDataConnection]
    );
    s.send("STOR /tmp.jpg\r\n");
    expect_receive(&s.take(), 150);
}

#[test]
fn a_passive_listener_survives_other_commands_and_is_released_on_timeout() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("CWD /\r\nTYPE I\r\nNOOP\r\n");
    s.expect_replies(&[250, 200, 200]);
    s.advance(Duration::from_secs(29));
    assert_eq!(s.take(), vec![]);
    s.send("STOR a.jpg\r\n");
    assert_eq!(s.replies(), vec![150]);
    let outputs = s.connect_from("127.0.0.1:40001");
    assert!(matches!(outputs[1], Output::Receive(_)));

    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.advance(Duration::from_secs(30));
    assert_eq!(s.take(), vec![Output::CloseData]);
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn no_data_connection_after_stor_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[150]);
    s.advance(Duration::from_secs(30));
    let outputs = s.take();
    assert_eq!(outputs[0], Output::CloseData);
    assert_eq!(codes(&outputs), vec![425]);
}

#[test]
fn stor_without_a_data_channel_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn a_listener_that_cannot_open_is_425() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPSV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
    s.data(DataEvent::ListenFailed);
    s.expect_replies(&[425]);
}

#[test]
fn too_large_reset_stalled_and_full_spools_are_answered_and_discarded() {
    for (end, code) in [
        (TransferEnd::TooLarge, 552),
        (
            TransferEnd::Complete {
                bytes: (1 << 30) + 1,
            },
            552,
        ),
        (TransferEnd::Reset, 426),
        (TransferEnd::Stalled, 426),
        (TransferEnd::SpoolFailed(SpoolFailure::StorageFull), 452),
        (TransferEnd::SpoolFailed(SpoolFailure::Other), 451),
    ] {
        let mut s = Harness::logged_in(Config::default());
        let upload = s.receiving("a.jpg");
        s.transfer_ended(upload, end);
        let outputs = s.take();
        assert_eq!(codes(&outputs), vec![code], "{end:?}");
        assert!(outputs.contains(&Output::Discard(upload)), "{end:?}");
        // The processor is never asked about a file that did not arrive whole.
        assert!(
            !outputs.iter().any(|o| matches!(o, Output::Process(_))),
            "{end:?}"
        );
        // And the session serves the next upload.
        s.upload_until_processing("b.jpg", 3);
    }
}

#[test]
fn a_processor_that_times_out_is_cancelled_and_answered_451() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    s.advance(Duration::from_secs(59));
    assert_eq!(s.take(), vec![]);
    s.advance(Duration::from_secs(1));
    let outputs = s.take();
    assert_eq!(outputs[0], Output::CancelProcessing(upload));
    assert_eq!(codes(&outputs), vec![451]);
    // A late answer changes nothing.
    s.processed(upload, Ok(()));
    assert_eq!(s.take(), vec![]);
}

#[test]
fn abor_during_an_upload_is_426_then_226() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.send("ABOR\r\n");
    let outputs = s.take();
    assert_eq!(outputs[0], Output::AbortTransfer(upload));
    assert_eq!(codes(&outputs), vec![426, 226]);
    // The adapter's late news about the aborted upload is ignored.
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 3 });
    assert_eq!(s.take(), vec![]);
}

#[test]
fn abor_while_waiting_for_the_data_connection() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[150]);
    s.send("ABOR\r\n");
    let outputs = s.take();
    assert_eq!(outputs[0], Output::CloseData);
    assert_eq!(codes(&outputs), vec![426, 226]);
}

#[test]
fn a_command_sent_during_an_upload_is_queued_not_lost() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    s.send("NOOP\r\nSYST\r\n");
    s.expect_replies(&[]);
    s.processed(upload, Ok(()));
    s.expect_replies(&[226, 200, 215]);
}

#[test]
fn quit_after_a_pending_upload_gets_that_uploads_reply_first() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    s.send("QUIT\r\n");
    s.expect_replies(&[]);
    s.processed(upload, Ok(()));
    s.expect_replies_then_close(&[226, 221]);
}

#[test]
fn ack_on_receipt_answers_226_first_and_keeps_processing_after_quit() {
    let config = support::config(|c| c.ack_on_receipt = true);
    let mut s = Harness::logged_in(config);
    let upload = s.receiving("a.jpg");
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 3 });
    let outputs = s.take();
    assert!(matches!(outputs[1], Output::Process(_)));
    assert_eq!(codes(&outputs), vec![226]);
    s.send("QUIT\r\n");
    s.expect_replies(&[221]);
    // The control connection is closed, the processing is not.
    assert!(!s.driver.finished);
    s.processed(upload, Ok(()));
    assert!(s.driver.finished);
}

#[test]
fn ack_on_receipt_bounds_the_processing_in_flight() {
    let config = support::config(|c| {
        c.ack_on_receipt = true;
        c.max_background_processing = 1;
    });
    let mut s = Harness::logged_in(config);
    let first = s.receiving("a.jpg");
    s.transfer_ended(first, TransferEnd::Complete { bytes: 3 });
    s.take();
    s.pasv();
    s.send("STOR b.jpg\r\n");
    // Waits for a free slot.
    s.expect_replies(&[]);
    s.processed(first, Ok(()));
    s.expect_replies(&[150]);
}

#[test]
fn stor_names_in_the_strict_profile() {
    let mut s = Harness::logged_in(Config::default());
    for (sent, file_name) in [
        ("/x.jpg", "x.jpg"),
        ("./x.jpg", "x.jpg"),
        ("x y.jpg", "x y.jpg"),
    ] {
        let (upload, got) = s.upload_until_processing(sent, 1);
        assert_eq!(got, file_name.as_bytes(), "{sent}");
        s.processed(upload, Ok(()));
        s.expect_replies(&[226]);
    }
    s.pasv();
    for name in ["sub/x.jpg", "../x.jpg", "/", ".."] {
        s.send(&format!("STOR {name}\r\n"));
        s.expect_replies(&[553]);
    }
}

#[test]
fn the_raw_name_reaches_the_processor_as_bytes() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send_bytes(b"STOR /\xC4\xE3\xBA\xC3.jpg\r\n");
    let upload = expect_receive(&s.take(), 150);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1 });
    let outputs = s.take();
    let [Output::CloseData, Output::Process(request)] = outputs.as_slice() else {
        panic!("expected processing, got {outputs:?}");
    };
    assert_eq!(request.name.as_ref(), b"/\xC4\xE3\xBA\xC3.jpg");
    assert_eq!(request.file_name.as_ref(), b"\xC4\xE3\xBA\xC3.jpg");
}

#[test]
fn stou_announces_a_generated_name() {
    let mut s = Harness::logged_in(Config::default());
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send("STOU\r\n");
    let outputs = s.take();
    let Output::Reply(reply) = &outputs[0] else {
        panic!("expected 150");
    };
    assert_eq!(reply.to_bytes(), b"150 FILE: upload-1\r\n");
    let upload = expect_receive(&outputs, 150);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1 });
    let outputs = s.take();
    let [Output::CloseData, Output::Process(request)] = outputs.as_slice() else {
        panic!("expected processing");
    };
    assert_eq!(request.file_name.as_ref(), b"upload-1");
}

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
    s.input(Input::LoginChecked(Ok(())));
    assert_eq!(s.take(), vec![]);
}

#[test]
fn the_control_connection_lost_mid_upload_aborts_it() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.input(Input::ControlClosed);
    let outputs = s.take();
    assert!(outputs.contains(&Output::AbortTransfer(upload)));
    assert!(s.driver.finished);
}

#[test]
fn processing_outlives_a_lost_control_connection_but_is_not_answered() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    s.input(Input::ControlClosed);
    assert!(!s.driver.finished);
    s.processed(upload, Ok(()));
    assert_eq!(s.replies(), Vec::<u16>::new());
    assert!(s.driver.finished);
}

#[test]
fn pipelined_commands_before_the_greeting_was_read_are_all_answered() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\nTYPE I\r\nPWD\r\nQUIT\r\n");
    assert_eq!(s.replies(), vec![331]);
    s.input(Input::LoginChecked(Ok(())));
    s.expect_replies(&[230, 200, 257, 221]);
}

#[test]
fn too_much_pipelined_input_pauses_reading() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\n");
    s.take();
    assert!(s.driver.session.wants_control_bytes());
    s.send(&"NOOP\r\n".repeat(3000));
    assert!(!s.driver.session.wants_control_bytes());
    s.input(Input::LoginChecked(Ok(())));
    assert_eq!(s.replies().len(), 3001);
    assert!(s.driver.session.wants_control_bytes());
}

#[test]
fn epsv_all_locks_out_the_other_data_commands() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPSV ALL\r\nPASV\r\nPORT 127,0,0,1,156,64\r\nEPRT |1|127.0.0.1|40000|\r\n");
    s.expect_replies(&[200, 503, 503, 503]);
    s.send("EPSV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
}

#[test]
fn epsv_replies_with_the_port_only() {
    let mut s = Harness::logged_in(Config::default());
    s.send("EPSV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
    s.data(DataEvent::Listening(addr("127.0.0.1:50123")));
    let outputs = s.take();
    let [Output::Reply(reply)] = outputs.as_slice() else {
        panic!("expected 229");
    };
    assert_eq!(
        reply.to_bytes(),
        b"229 Entering Extended Passive Mode (|||50123|)\r\n"
    );
    s.send("EPSV 2\r\n");
    s.expect_replies(&[522]);
}

#[test]
fn ipv6_sessions_use_epsv_and_eprt() {
    let mut s = Harness::with_addresses(Config::default(), "[::1]:2121", "[::1]:40000");
    s.login("bob", "secret");
    s.send("PASV\r\nEPSV 1\r\nEPRT |2|::1|40000|\r\nPORT 127,0,0,1,156,64\r\n");
    s.expect_replies(&[425, 522, 200, 501]);
    s.send("EPSV 2\r\n");
    // The PORT channel is replaced by the new listener.
    assert_eq!(s.take(), vec![Output::CloseData, Output::Listen]);
    s.data(DataEvent::Listening(addr("[::1]:50000")));
    s.expect_replies(&[229]);
    assert_eq!(
        s.connect_from("[::1]:40001"),
        vec![Output::AcceptDataConnection]
    );
}

#[test]
fn ipv4_mapped_peers_compare_as_ipv4() {
    let mut s = Harness::with_addresses(
        Config::default(),
        "[::ffff:127.0.0.1]:2121",
        "[::ffff:127.0.0.1]:40000",
    );
    s.login("bob", "secret");
    assert_eq!(s.pasv(), "Entering Passive Mode (127,0,0,1,195,80).");
    assert_eq!(
        s.connect_from("127.0.0.1:40001"),
        vec![Output::AcceptDataConnection]
    );
    s.send("PORT 127,0,0,1,156,64\r\n");
    s.expect_replies(&[200]);
}

#[test]
fn the_advertised_passive_address_is_used_in_227() {
    let config = support::config(|c| c.passive_address = Some("203.0.113.7".parse().expect("ip")));
    let mut s = Harness::logged_in(config);
    assert_eq!(s.pasv(), "Entering Passive Mode (203,0,113,7,195,80).");
}

#[test]
fn a_deadline_is_always_in_the_future() {
    let mut s = Harness::logged_in(Config::default());
    let now = s.driver.now;
    assert_eq!(s.wait_deadline(), Some(now + Duration::from_secs(300)));
    s.pasv();
    assert_eq!(s.wait_deadline(), Some(now + Duration::from_secs(30)));
}

#[test]
fn a_file_the_processor_rejects_for_good_is_550() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("b.exe", 10);
    s.processed(upload, Err(ProcessError::rejected("not a picture")));
    s.expect_replies(&[550]);
}

#[test]
fn shutdown_closes_an_idle_session_with_421() {
    let mut s = Harness::logged_in(Config::default());
    s.input(Input::Shutdown);
    s.expect_replies_then_close(&[421]);
    assert!(s.driver.finished);
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
fn a_stale_connect_failure_changes_nothing() {
    // During a login check.
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\n");
    s.take();
    s.data(DataEvent::ConnectFailed);
    assert_eq!(s.take(), vec![]);
    s.input(Input::LoginChecked(Ok(())));
    s.expect_replies(&[230]);
    // During processing, and during a passive upload.
    let (upload, _) = s.upload_until_processing("a.jpg", 3);
    s.data(DataEvent::ConnectFailed);
    assert_eq!(s.take(), vec![]);
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
    let upload = s.receiving("b.jpg");
    s.data(DataEvent::ConnectFailed);
    assert_eq!(s.take(), vec![]);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1 });
    assert!(matches!(
        s.take().as_slice(),
        [Output::CloseData, Output::Process(_)]
    ));
}

#[test]
fn end_of_file_answers_the_commands_received_then_closes() {
    // `printf 'USER u\r\nPASS p\r\nNOOP\r\n' | nc -N host 21`: the client
    // half-closes while the login is being checked.
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS secret\r\nNOOP\r\n");
    s.take();
    s.input(Input::ControlEof);
    assert!(!s.driver.session.wants_control_bytes());
    s.input(Input::LoginChecked(Ok(())));
    s.expect_replies_then_close(&[230, 200]);
    assert!(s.driver.finished);
}

#[test]
fn a_last_line_without_its_line_end_counts_at_end_of_file() {
    let mut s = Harness::logged_in(Config::default());
    s.send("NOOP\r\nQUIT");
    s.expect_replies(&[200]);
    s.input(Input::ControlEof);
    s.expect_replies_then_close(&[221]);
}

#[test]
fn abor_after_a_telnet_synch_whose_dm_byte_the_kernel_removed() {
    // lftp sends IAC IP IAC DM ABOR with DM as TCP urgent data; without
    // SO_OOBINLINE the DM never arrives.
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.send_bytes(b"\xFF\xF4\xFFABOR\r\n");
    let outputs = s.take();
    assert_eq!(outputs[0], Output::AbortTransfer(upload));
    assert_eq!(codes(&outputs), vec![426, 226]);
}

#[test]
fn a_listener_reported_after_the_listen_timed_out_is_released() {
    let mut s = Harness::logged_in(Config::default());
    s.send("PASV\r\n");
    assert_eq!(s.take(), vec![Output::Listen]);
    s.advance(Duration::from_secs(30));
    s.expect_replies(&[425]);
    s.data(DataEvent::Listening(addr("127.0.0.1:50000")));
    assert_eq!(s.take(), vec![Output::CloseData]);
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
fn end_of_file_during_a_transfer_aborts_it() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.input(Input::ControlEof);
    let outputs = s.take();
    assert!(
        outputs.contains(&Output::AbortTransfer(upload)),
        "{outputs:?}"
    );
    assert!(s.driver.finished);
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
    assert!(!s.driver.finished);
}

#[test]
fn a_locked_out_address_is_answered_421() {
    let mut s = Harness::new();
    s.send("USER bob\r\nPASS guess\r\n");
    s.take();
    s.input(Input::LoginLockedOut);
    s.expect_replies_then_close(&[421]);
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
