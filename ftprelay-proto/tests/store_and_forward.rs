//! A store-and-forward processor (a durable queue): every upload is
//! admitted before its `150`, and every held upload kept before its `226`.

mod support;

use std::time::Duration;

use ftprelay_proto::{
    Config, Input, Output, ProcessError, ProcessRequest, Profile, TransferEnd, TransferId,
};
use support::{Harness, codes, expect_receive};

fn devices() -> Config {
    support::config(|c| c.profile = Profile::Devices)
}

/// PASV, the client's data connection, then `line` (an upload): the one
/// output must be the admission check; returns its upload.
fn ask_admission(s: &mut Harness, line: &str) -> TransferId {
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send(&format!("{line}\r\n"));
    match s.take().as_slice() {
        [Output::CheckAdmission(upload)] => *upload,
        other => panic!("{line}: expected an admission check, got {other:?}"),
    }
}

fn admit(s: &mut Harness, upload: TransferId, result: Result<(), ProcessError>) {
    s.input(Input::Admission { upload, result });
}

/// An upload of `name`, admitted and received whole with `bytes`: the
/// outputs after the transfer ended.
fn admitted_upload(s: &mut Harness, name: &str, bytes: u64) -> (TransferId, Vec<Output>) {
    let upload = ask_admission(s, &format!("STOR {name}"));
    admit(s, upload, Ok(()));
    assert_eq!(expect_receive(&s.take(), 150), upload);
    s.transfer_ended(upload, TransferEnd::Complete { bytes });
    (upload, s.take())
}

/// A held upload (devices profile), received: the hold the session asks for.
fn held_upload(s: &mut Harness, name: &str, bytes: u64) -> ProcessRequest {
    let (upload, outputs) = admitted_upload(s, name, bytes);
    match outputs.as_slice() {
        [Output::CloseData, Output::Hold(request)] => {
            assert_eq!(request.upload, upload);
            assert_eq!(request.size, bytes);
            request.clone()
        }
        other => panic!("expected a hold and no 226 yet, got {other:?}"),
    }
}

fn held(s: &mut Harness, upload: TransferId, result: Result<(), ProcessError>) {
    s.input(Input::Held { upload, result });
}

fn is_data_output(output: &Output) -> bool {
    matches!(
        output,
        Output::Receive(_) | Output::Listen | Output::Connect(_) | Output::Send { .. }
    )
}

#[test]
fn an_admitted_upload_gets_its_150_and_is_received_and_processed() {
    let mut s = Harness::logged_in_storing(Config::default());
    let (upload, outputs) = admitted_upload(&mut s, "a.jpg", 10);
    let [Output::CloseData, Output::Process(request)] = outputs.as_slice() else {
        panic!("expected processing, got {outputs:?}");
    };
    assert_eq!(request.upload, upload);
    assert_eq!(request.file_name.as_ref(), b"a.jpg");
    s.processed(upload, Ok(()));
    s.expect_replies(&[226]);
}

#[test]
fn a_full_queue_is_452_before_any_byte_and_the_next_upload_is_new() {
    let mut s = Harness::logged_in_storing(Config::default());
    let refused = ask_admission(&mut s, "STOR a.jpg");
    admit(
        &mut s,
        refused,
        Err(ProcessError::storage_full("queue full")),
    );
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![452]);
    assert!(!outputs.iter().any(is_data_output), "{outputs:?}");
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Process(_))),
        "{outputs:?}"
    );
    // The queue has room again: the next upload goes through, under a new id.
    let upload = ask_admission(&mut s, "STOR a.jpg");
    assert!(upload > refused, "{upload} after {refused}");
    // A late answer about the refused one changes nothing.
    admit(&mut s, refused, Ok(()));
    assert_eq!(s.take(), vec![]);
    admit(&mut s, upload, Ok(()));
    assert_eq!(expect_receive(&s.take(), 150), upload);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 3 });
    s.processed(upload, Ok(()));
    assert_eq!(codes(&s.take()), vec![226]);
}

#[test]
fn a_refused_upload_leaves_no_data_channel_behind() {
    let mut s = Harness::logged_in_storing(Config::default());
    let refused = ask_admission(&mut s, "STOR a.jpg");
    admit(
        &mut s,
        refused,
        Err(ProcessError::storage_full("queue full")),
    );
    assert!(s.take().contains(&Output::CloseData));
    s.send("STOR a.jpg\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn an_admission_never_answered_is_451_at_its_deadline_and_the_session_goes_on() {
    let config = Config::default();
    let timeout = config.process_timeout;
    let mut s = Harness::logged_in_storing(config);
    let upload = ask_admission(&mut s, "STOR a.jpg");
    let asked = s.adapter.now;
    assert_eq!(s.wait_deadline(), Some(asked + timeout));
    s.advance(timeout - Duration::from_millis(1));
    assert_eq!(s.take(), vec![]);
    s.advance(Duration::from_millis(1));
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![451]);
    assert!(!outputs.iter().any(is_data_output), "{outputs:?}");
    // Too late: no 150 for it now.
    admit(&mut s, upload, Ok(()));
    assert_eq!(s.take(), vec![]);
    s.send("NOOP\r\n");
    s.expect_replies(&[200]);
}

#[test]
fn commands_pipelined_behind_an_upload_wait_for_its_admission() {
    let mut s = Harness::logged_in_storing(Config::default());
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send("STOR a.jpg\r\nNOOP\r\n");
    let [Output::CheckAdmission(upload)] = s.take()[..] else {
        panic!("expected only the admission check");
    };
    admit(&mut s, upload, Ok(()));
    assert_eq!(expect_receive(&s.take(), 150), upload);
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 1 });
    s.take();
    s.processed(upload, Ok(()));
    s.expect_replies(&[226, 200]);
    // And behind a refusal: the refusal first.
    s.pasv();
    s.send("STOR b.jpg\r\nNOOP\r\n");
    let [Output::CheckAdmission(upload)] = s.take()[..] else {
        panic!("expected only the admission check");
    };
    admit(&mut s, upload, Err(ProcessError::storage_full("full")));
    s.expect_replies(&[452, 200]);
}

#[test]
fn stou_and_appe_are_admitted_and_listings_are_not() {
    let mut s = Harness::logged_in_storing(devices());
    let upload = ask_admission(&mut s, "STOU");
    admit(&mut s, upload, Ok(()));
    let outputs = s.take();
    assert_eq!(expect_receive(&outputs, 150), upload);
    let Output::Reply(preliminary) = &outputs[0] else {
        unreachable!("checked above");
    };
    assert_eq!(preliminary.text(), format!("FILE: upload-{upload}"));
    let mut s = Harness::logged_in_storing(devices());
    let upload = ask_admission(&mut s, "APPE log.txt");
    admit(&mut s, upload, Ok(()));
    assert_eq!(expect_receive(&s.take(), 150), upload);
    let mut s = Harness::logged_in_storing(devices());
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send("LIST\r\n");
    let outputs = s.take();
    assert!(
        matches!(outputs.as_slice(), [Output::Reply(r), Output::Send { .. }] if r.code().as_u16() == 150),
        "{outputs:?}"
    );
}

#[test]
fn without_store_and_forward_nothing_is_admitted_or_held() {
    let mut s = Harness::logged_in(devices());
    let upload = s.receiving("cam_tmp.jpg");
    s.transfer_ended(upload, TransferEnd::Complete { bytes: 2 });
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![226]);
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::Hold(_) | Output::CheckAdmission(_))),
        "{outputs:?}"
    );
}

#[test]
fn a_held_upload_is_kept_before_its_226_and_processed_under_its_final_name() {
    let mut s = Harness::logged_in_storing(devices());
    s.send("CWD /cam\r\n");
    s.take();
    let hold = held_upload(&mut s, "snap_tmp.jpg", 9);
    assert_eq!(hold.path.as_ref(), b"/cam/snap_tmp.jpg");
    assert_eq!(hold.file_name.as_ref(), b"snap_tmp.jpg");
    held(&mut s, hold.upload, Ok(()));
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![226]);
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Process(_))),
        "{outputs:?}"
    );
    s.send("RNFR snap_tmp.jpg\r\nRNTO snap.jpg\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![350]);
    let Some(Output::Process(request)) = outputs.last() else {
        panic!("RNTO processes the held upload: {outputs:?}");
    };
    assert_eq!(request.upload, hold.upload);
    assert_eq!(request.path.as_ref(), b"/cam/snap.jpg");
    assert_eq!(request.size, 9);
    s.processed(hold.upload, Ok(()));
    s.expect_replies(&[250]);
}

#[test]
fn a_hold_that_fails_is_answered_with_its_error_and_discarded() {
    let mut s = Harness::logged_in_storing(devices());
    let hold = held_upload(&mut s, "x.part", 4);
    held(
        &mut s,
        hold.upload,
        Err(ProcessError::storage_full("disk full")),
    );
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![452]);
    assert!(
        outputs.contains(&Output::Discard(hold.upload)),
        "{outputs:?}"
    );
    // Not held: a rename finds nothing to process, and neither does QUIT.
    s.send("SIZE x.part\r\nRNFR x.part\r\nRNTO x.bin\r\nQUIT\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![550, 350, 250, 221]);
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Process(_))),
        "{outputs:?}"
    );
}

#[test]
fn a_hold_never_answered_is_451_and_discarded_at_its_deadline() {
    let config = devices();
    let timeout = config.process_timeout;
    let mut s = Harness::logged_in_storing(config);
    let hold = held_upload(&mut s, "x.part", 4);
    s.advance(timeout);
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![451]);
    assert!(
        outputs.contains(&Output::Discard(hold.upload)),
        "{outputs:?}"
    );
    held(&mut s, hold.upload, Ok(()));
    assert_eq!(s.take(), vec![], "a late hold is not answered 226");
    s.send("QUIT\r\n");
    s.expect_replies(&[221]);
}

#[test]
fn a_held_upload_deleted_before_its_rename_is_discarded() {
    let mut s = Harness::logged_in_storing(devices());
    let hold = held_upload(&mut s, "test.tmp", 4);
    held(&mut s, hold.upload, Ok(()));
    s.take();
    s.send("DELE test.tmp\r\nQUIT\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![250, 221]);
    assert!(
        outputs.contains(&Output::Discard(hold.upload)),
        "{outputs:?}"
    );
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Process(_))),
        "{outputs:?}"
    );
}

#[test]
fn a_held_upload_replaced_by_a_new_one_is_discarded() {
    let mut s = Harness::logged_in_storing(devices());
    let first = held_upload(&mut s, "a.tmp", 4);
    held(&mut s, first.upload, Ok(()));
    s.take();
    let (second, outputs) = admitted_upload(&mut s, "a.tmp", 5);
    assert!(
        outputs.contains(&Output::Discard(first.upload)),
        "{outputs:?}"
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Hold(r) if r.upload == second)),
        "{outputs:?}"
    );
}

#[test]
fn held_uploads_are_processed_when_the_session_ends() {
    let mut s = Harness::logged_in_storing(devices());
    let hold = held_upload(&mut s, "scan.tmp", 3);
    held(&mut s, hold.upload, Ok(()));
    s.take();
    s.input(Input::ControlClosed);
    let outputs = s.take();
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Process(r) if r.upload == hold.upload && r.path.as_ref() == b"/scan.tmp")),
        "{outputs:?}"
    );
    s.processed(hold.upload, Ok(()));
    assert!(s.adapter.finished);
}

#[test]
fn a_client_that_leaves_during_its_hold_gets_the_upload_discarded() {
    let mut s = Harness::logged_in_storing(devices());
    let hold = held_upload(&mut s, "scan.tmp", 3);
    s.input(Input::ControlClosed);
    let outputs = s.take();
    assert!(
        outputs.contains(&Output::Discard(hold.upload)),
        "{outputs:?}"
    );
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Process(_))),
        "never answered 226: never processed"
    );
    assert!(s.adapter.finished);
}

#[test]
fn shutdown_waits_for_the_hold_then_processes_the_held_upload() {
    let mut s = Harness::logged_in_storing(devices());
    let hold = held_upload(&mut s, "scan.tmp", 3);
    s.input(Input::Shutdown);
    assert_eq!(s.take(), vec![]);
    held(&mut s, hold.upload, Ok(()));
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![226]);
    assert!(
        matches!(outputs.last(), Some(Output::Process(r)) if r.upload == hold.upload),
        "{outputs:?}"
    );
    s.processed(hold.upload, Ok(()));
    s.expect_replies(&[421]);
}
