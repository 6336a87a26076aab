//! The devices profile: folders, listings, sizes, renames and deletes
//! simulated in the session's memory; temporary names held until renamed.

mod support;

use std::time::Duration;

use bytes::Bytes;
use ftprelay_proto::{
    Config, DataEvent, Input, LoginVerdict, Output, Profile, TransferEnd, TransferId,
};
use support::{Harness, codes};

fn devices() -> Config {
    support::config(|c| c.profile = Profile::Devices)
}

fn reply_text(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply(reply) => Some(
                String::from_utf8_lossy(&reply.to_bytes())
                    .trim_end()
                    .to_owned(),
            ),
            _ => None,
        })
        .collect()
}

/// STOR over a fresh passive channel; the transfer completes with `bytes`.
fn upload(s: &mut Harness, name: &str, bytes: u64) -> (TransferId, Vec<Output>) {
    let upload = s.receiving(name);
    s.transfer_ended(upload, TransferEnd::Complete { bytes });
    (upload, s.take())
}

/// LIST/NLST/MLSD over a fresh passive channel: the bytes sent, and the
/// final reply code.
fn listing(s: &mut Harness, line: &str) -> (Bytes, u16) {
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send(&format!("{line}\r\n"));
    let outputs = s.take();
    let [
        Output::Reply(preliminary),
        Output::Send {
            transfer, bytes, ..
        },
    ] = outputs.as_slice()
    else {
        panic!("{line}: expected 150 and Send, got {outputs:?}");
    };
    assert_eq!(preliminary.code().as_u16(), 150);
    let (transfer, bytes) = (*transfer, bytes.clone());
    s.data(DataEvent::TransferEnded {
        upload: transfer,
        end: TransferEnd::Complete {
            bytes: bytes.len() as u64,
        },
    });
    let code = codes(&s.take())[0];
    (bytes, code)
}

#[test]
fn folders_are_entered_made_and_shown() {
    let mut s = Harness::logged_in(devices());
    s.send("CWD /NVR01\r\nPWD\r\nMKD 2024-05-01\r\nCWD 2024-05-01\r\nXPWD\r\nCDUP\r\nPWD\r\n");
    assert_eq!(
        reply_text(&s.take()),
        [
            "250 Directory successfully changed.",
            "257 \"/NVR01\" is the current directory.",
            "257 \"/NVR01/2024-05-01\" created.",
            "250 Directory successfully changed.",
            "257 \"/NVR01/2024-05-01\" is the current directory.",
            "250 Directory successfully changed.",
            "257 \"/NVR01\" is the current directory.",
        ]
    );
    s.send(
        "CWD \\cam\\ch1\r\nPWD\r\nXMKD a\r\nMKD a\r\nRMD a\r\nXRMD a\r\nCWD ../..//x/.\r\nPWD\r\n",
    );
    let texts = reply_text(&s.take());
    assert_eq!(texts[1], "257 \"/cam/ch1\" is the current directory.");
    assert_eq!(texts[2], "257 \"/cam/ch1/a\" created.");
    assert_eq!(
        texts[3], "257 \"/cam/ch1/a\" created.",
        "MKD of an existing folder still succeeds"
    );
    assert!(texts[4].starts_with("250") && texts[5].starts_with("250"));
    assert_eq!(texts[7], "257 \"/x\" is the current directory.");
}

#[test]
fn the_processor_gets_the_virtual_path() {
    let mut s = Harness::logged_in(devices());
    s.send("CWD /NVR01/ch1\r\n");
    s.take();
    let (_, outputs) = upload(&mut s, "snap.jpg", 10);
    let Some(Output::Process(request)) = outputs.iter().find(|o| matches!(o, Output::Process(_)))
    else {
        panic!("expected processing, got {outputs:?}");
    };
    assert_eq!(request.path.as_ref(), b"/NVR01/ch1/snap.jpg");
    assert_eq!(request.file_name.as_ref(), b"snap.jpg");
    assert_eq!(request.name.as_ref(), b"snap.jpg");
    s.processed(request.upload, Ok(()));
    s.expect_replies(&[226]);
    let (_, outputs) = upload(&mut s, "/other/dir/x.bin", 1);
    let Some(Output::Process(request)) = outputs.iter().find(|o| matches!(o, Output::Process(_)))
    else {
        panic!("expected processing");
    };
    assert_eq!(request.path.as_ref(), b"/other/dir/x.bin");
}

#[test]
fn size_and_mdtm_answer_for_this_sessions_uploads_only() {
    let epoch = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_566_896);
    let mut s = Harness::with_config(devices());
    s.adapter.session = std::mem::replace(
        &mut s.adapter.session,
        ftprelay_proto::Session::new(
            std::sync::Arc::new(devices()),
            s.adapter.now,
            support::addr(support::RELAY),
            support::addr(support::CLIENT),
        ),
    )
    .with_wall_clock(epoch);
    s.login("bob", "secret");
    s.send("SIZE a.jpg\r\nMDTM a.jpg\r\n");
    s.expect_replies(&[550, 550]);
    let (upload, _) = upload(&mut s, "a.jpg", 1234);
    s.processed(upload, Ok(()));
    s.take();
    s.send("SIZE a.jpg\r\nSIZE /a.jpg\r\nMDTM a.jpg\r\nSIZE b.jpg\r\n");
    assert_eq!(
        reply_text(&s.take()),
        [
            "213 1234",
            "213 1234",
            "213 20240501123456",
            "550 No such file."
        ]
    );
}

#[test]
fn listings_are_empty_or_this_sessions_files_and_never_550() {
    let mut s = Harness::logged_in(devices());
    for line in [
        "LIST",
        "LIST -a",
        "LIST -la /some/dir",
        "NLST",
        "NLST *.jpg",
        "MLSD",
    ] {
        let (bytes, code) = listing(&mut s, line);
        assert_eq!(code, 226, "{line}");
        assert!(bytes.is_empty(), "{line}: {bytes:?}");
    }
    s.send("CWD /cam\r\n");
    s.take();
    let (upload, _) = upload(&mut s, "a.jpg", 7);
    s.processed(upload, Ok(()));
    s.take();
    let (bytes, _) = listing(&mut s, "NLST");
    assert_eq!(bytes.as_ref(), b"a.jpg\r\n");
    let (bytes, _) = listing(&mut s, "LIST -la");
    assert!(
        bytes.starts_with(b"-rw-r--r-- 1 ftp ftp") && bytes.ends_with(b" a.jpg\r\n"),
        "{bytes:?}"
    );
    let (bytes, _) = listing(&mut s, "MLSD /cam");
    assert_eq!(bytes.as_ref(), b"type=file;size=7; a.jpg\r\n");
    let (bytes, _) = listing(&mut s, "NLST /elsewhere");
    assert!(bytes.is_empty());
    s.send("MLST a.jpg\r\nMLST b.jpg\r\n");
    s.expect_replies(&[250, 550]);
}

#[test]
fn a_temporary_upload_is_held_and_processed_under_its_final_name() {
    let mut s = Harness::logged_in(devices());
    s.send("DELE camera.jpg\r\n");
    s.expect_replies(&[250]);
    let (upload, outputs) = upload(&mut s, "camera_tmp.jpg", 9);
    assert_eq!(codes(&outputs), vec![226]);
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Process(_))),
        "a temporary upload was processed"
    );
    s.send("DELE camera.jpg\r\nRNFR camera_tmp.jpg\r\nRNTO camera.jpg\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![250, 350]);
    let Some(Output::Process(request)) = outputs.last() else {
        panic!("RNTO processes the held upload: {outputs:?}");
    };
    assert_eq!(request.upload, upload);
    assert_eq!(request.file_name.as_ref(), b"camera.jpg");
    assert_eq!(request.path.as_ref(), b"/camera.jpg");
    assert_eq!(request.size, 9);
    // The RNTO's reply carries the processing result.
    s.processed(upload, Ok(()));
    s.expect_replies(&[250]);
    s.send("SIZE camera.jpg\r\n");
    s.expect_replies(&[213]);
}

#[test]
fn a_failed_processing_of_a_renamed_upload_reaches_the_rnto() {
    let mut s = Harness::logged_in(devices());
    let (upload, _) = upload(&mut s, "x.part", 1);
    s.send("RNFR x.part\r\nRNTO x.bin\r\n");
    s.take();
    s.processed(upload, Err(ftprelay_proto::ProcessError::transient("down")));
    s.expect_replies(&[451]);
}

#[test]
fn a_test_upload_deleted_before_its_rename_is_never_processed() {
    let config = support::config(|c| {
        c.profile = Profile::Devices;
        c.temporary_names.push("test*".to_owned());
    });
    let mut s = Harness::logged_in(config);
    let (upload, outputs) = upload(&mut s, "testftp.txt", 4);
    assert_eq!(codes(&outputs), vec![226]);
    s.send("DELE testftp.txt\r\nQUIT\r\n");
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![250, 221]);
    assert!(outputs.contains(&Output::Discard(upload)));
    assert!(!outputs.iter().any(|o| matches!(o, Output::Process(_))));
}

#[test]
fn held_uploads_are_processed_at_quit_before_221() {
    let mut s = Harness::logged_in(devices());
    let (upload, _) = upload(&mut s, "scan.tmp", 3);
    s.send("QUIT\r\n");
    let outputs = s.take();
    assert!(
        matches!(outputs.as_slice(), [Output::Process(r)] if r.upload == upload),
        "{outputs:?}"
    );
    s.processed(upload, Ok(()));
    let outputs = s.take();
    assert_eq!(codes(&outputs), vec![221]);
}

#[test]
fn a_held_upload_is_processed_after_a_short_idle_time() {
    let mut s = Harness::logged_in(devices());
    let (upload, _) = upload(&mut s, "scan.tmp", 3);
    s.advance(Duration::from_secs(29));
    assert_eq!(s.take(), vec![]);
    s.advance(Duration::from_secs(1));
    let outputs = s.take();
    assert!(
        matches!(outputs.as_slice(), [Output::Process(r)] if r.upload == upload),
        "{outputs:?}"
    );
    s.processed(upload, Ok(()));
    assert_eq!(s.take(), vec![], "it was answered when it arrived");
}

#[test]
fn held_uploads_are_processed_when_the_client_leaves() {
    let mut s = Harness::logged_in(devices());
    let (upload, _) = upload(&mut s, "scan.tmp", 3);
    s.input(Input::ControlClosed);
    let outputs = s.take();
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Process(r) if r.upload == upload)),
        "{outputs:?}"
    );
    assert!(!s.adapter.finished);
    s.processed(upload, Ok(()));
    assert!(s.adapter.finished);
}

#[test]
fn renames_and_deletes_of_unknown_files_succeed_and_touch_nothing() {
    let mut s = Harness::logged_in(devices());
    s.send("DELE old.jpg\r\nRNFR nothing.jpg\r\nRNTO else.jpg\r\nRNTO again.jpg\r\n");
    s.expect_replies(&[250, 350, 250, 503]);
}

#[test]
fn the_rest_of_the_device_plumbing() {
    let mut s = Harness::logged_in(devices());
    for (line, code) in [
        ("SITE CHMOD 644 a.jpg", 200),
        ("site chmod 644 a.jpg", 200),
        ("SITE EXEC rm -rf /", 502),
        ("MFMT 20240501120000 a.jpg", 213),
        ("STRU R", 200),
        ("STRU F", 200),
        ("TYPE E", 200),
        ("TYPE A T", 200),
        ("TYPE L 8", 200),
        ("ALLO 1234", 200),
        ("REIN", 502),
        ("RETR a.jpg", 550),
        ("OPTS UTF8 ON", 200),
    ] {
        s.send(&format!("{line}\r\n"));
        assert_eq!(s.replies(), vec![code], "{line}");
    }
}

#[test]
fn a_per_user_profile_is_chosen_at_login() {
    let mut s = Harness::new();
    s.send("USER cam\r\nPASS pw\r\n");
    s.take();
    s.input(Input::LoginChecked(LoginVerdict::Accepted {
        profile: Some(Profile::Devices),
        store_and_forward: false,
    }));
    s.expect_replies(&[230]);
    s.send("MKD a\r\n");
    s.expect_replies(&[257]);
    // And the strict profile still refuses the same.
    let mut strict = Harness::logged_in(Config::default());
    for line in [
        "MKD a",
        "CWD a",
        "LIST",
        "SIZE a",
        "DELE a",
        "RNFR a",
        "SITE CHMOD 644 a",
    ] {
        strict.send(&format!("{line}\r\n"));
        assert_eq!(strict.replies(), vec![550], "{line}");
    }
}

#[test]
fn a_listing_without_a_data_channel_is_425() {
    let mut s = Harness::logged_in(devices());
    s.send("LIST\r\n");
    s.expect_replies(&[425]);
}

#[test]
fn storing_a_held_name_again_drops_the_first_upload() {
    let mut s = Harness::logged_in(devices());
    let (first, _) = upload(&mut s, "x.tmp", 5);
    let (second, outputs) = upload(&mut s, "x.tmp", 6);
    assert!(outputs.contains(&Output::Discard(first)), "{outputs:?}");
    s.send("RNFR x.tmp\r\nRNTO x.bin\r\n");
    let outputs = s.take();
    let Some(Output::Process(request)) = outputs.last() else {
        panic!("{outputs:?}");
    };
    assert_eq!((request.upload, request.size), (second, 6));
}

#[test]
fn a_rename_onto_a_held_upload_replaces_it() {
    let mut s = Harness::logged_in(devices());
    let (a, _) = upload(&mut s, "a.tmp", 1);
    let (b, _) = upload(&mut s, "b.tmp", 2);
    s.send("RNFR a.tmp\r\nRNTO b.tmp\r\n");
    let outputs = s.take();
    assert!(
        outputs.contains(&Output::Discard(b)),
        "the replaced upload is dropped: {outputs:?}"
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Process(r) if r.upload == a))
    );
}

#[test]
fn the_held_timer_waits_for_commands_already_sent() {
    let mut s = Harness::logged_in(devices());
    let (held, _) = upload(&mut s, "a.tmp", 1);
    let (slow, _) = upload(&mut s, "b.jpg", 1);
    // Sent while b.jpg is being processed, which takes longer than the
    // held timer.
    s.send("RNFR a.tmp\r\nRNTO a.jpg\r\n");
    s.advance(Duration::from_secs(35));
    s.take();
    s.processed(slow, Ok(()));
    let outputs = s.take();
    let process = outputs.iter().find_map(|o| match o {
        Output::Process(r) if r.upload == held => Some(r.file_name.clone()),
        _ => None,
    });
    assert_eq!(process.as_deref(), Some(&b"a.jpg"[..]), "{outputs:?}");
}
