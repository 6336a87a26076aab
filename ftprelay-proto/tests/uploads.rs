//! Uploads from STOR to 226: the processor's answers, failed transfers,
//! ABOR, commands during an upload, names, acknowledgement on receipt.
//! In memory, with a virtual clock.

mod support;

use std::time::Duration;

use ftprelay_proto::{Config, Input, Output, ProcessError, SpoolFailure, TransferEnd};
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
    assert!(s.adapter.finished);
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
    assert!(!s.adapter.finished);
    s.processed(upload, Ok(()));
    assert!(s.adapter.finished);
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
fn the_control_connection_lost_mid_upload_aborts_it() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.input(Input::ControlClosed);
    let outputs = s.take();
    assert!(outputs.contains(&Output::AbortTransfer(upload)));
    assert!(s.adapter.finished);
}

#[test]
fn processing_outlives_a_lost_control_connection_but_is_not_answered() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("a.jpg", 10);
    s.input(Input::ControlClosed);
    assert!(!s.adapter.finished);
    s.processed(upload, Ok(()));
    assert_eq!(s.replies(), Vec::<u16>::new());
    assert!(s.adapter.finished);
}

#[test]
fn a_file_the_processor_rejects_for_good_is_550() {
    let mut s = Harness::logged_in(Config::default());
    let (upload, _) = s.upload_until_processing("b.exe", 10);
    s.processed(upload, Err(ProcessError::rejected("not a picture")));
    s.expect_replies(&[550]);
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
fn end_of_file_during_a_transfer_aborts_it() {
    let mut s = Harness::logged_in(Config::default());
    let upload = s.receiving("a.jpg");
    s.input(Input::ControlEof);
    let outputs = s.take();
    assert!(
        outputs.contains(&Output::AbortTransfer(upload)),
        "{outputs:?}"
    );
    assert!(s.adapter.finished);
}
