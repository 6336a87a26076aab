//! The devices profile: a user's uploads seen for a moment by the user's
//! other sessions (rclone checks each upload on another connection), never
//! by another user's, never after the window.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ftprelay_proto::{Config, DataEvent, Output, Profile, RecentUploads, TransferEnd};
use support::{Harness, codes};

fn devices() -> Config {
    support::config(|c| {
        c.profile = Profile::Devices;
        c.recent_upload_window = Duration::from_secs(60);
    })
}

fn upload(s: &mut Harness, name: &str, bytes: u64) {
    let upload = s.receiving(name);
    s.transfer_ended(upload, TransferEnd::Complete { bytes });
    let outputs = s.take();
    let Some(Output::Process(request)) = outputs.iter().find(|o| matches!(o, Output::Process(_)))
    else {
        panic!("{name} was not processed: {outputs:?}");
    };
    s.processed(request.upload, Ok(()));
    s.expect_replies(&[226]);
}

/// NLST over a fresh passive channel: the names sent.
fn names(s: &mut Harness, folder: &str) -> Bytes {
    s.pasv();
    s.connect_from("127.0.0.1:40001");
    s.send(&format!("NLST {folder}\r\n"));
    let outputs = s.take();
    let Some(Output::Send {
        transfer, bytes, ..
    }) = outputs.iter().find(|o| matches!(o, Output::Send { .. }))
    else {
        panic!("no listing sent: {outputs:?}");
    };
    let (transfer, bytes) = (*transfer, bytes.clone());
    s.data(DataEvent::TransferEnded {
        upload: transfer,
        end: TransferEnd::Complete {
            bytes: bytes.len() as u64,
        },
    });
    assert_eq!(codes(&s.take()), vec![226]);
    bytes
}

#[test]
fn another_session_of_the_same_user_sees_an_upload_for_a_moment() {
    let recent = Arc::new(RecentUploads::new(Duration::from_secs(60), 100));
    let mut uploader = Harness::logged_in_sharing(devices(), &recent, "bob");
    let mut checker = Harness::logged_in_sharing(devices(), &recent, "bob");
    let mut stranger = Harness::logged_in_sharing(devices(), &recent, "eve");
    uploader.send("CWD /backup\r\n");
    uploader.expect_replies(&[250]);
    upload(&mut uploader, "file1.bin", 1234);

    checker.send("SIZE /backup/file1.bin\r\nMDTM /backup/file1.bin\r\nSIZE /backup/other.bin\r\n");
    let codes = checker.replies();
    assert_eq!(codes[0], 213);
    assert_eq!(codes[2], 550);
    assert_eq!(&names(&mut checker, "/backup")[..], b"file1.bin\r\n");
    assert_eq!(&names(&mut checker, "/")[..], b"");

    // Another user sees nothing of it.
    stranger.send("SIZE /backup/file1.bin\r\n");
    stranger.expect_replies(&[550]);
    assert_eq!(&names(&mut stranger, "/backup")[..], b"");

    // After the window, neither does the user's other session.
    checker.advance(Duration::from_secs(61));
    checker.send("SIZE /backup/file1.bin\r\n");
    checker.expect_replies(&[550]);
    // The uploading session still knows its own upload.
    uploader.advance(Duration::from_secs(61));
    uploader.send("SIZE /backup/file1.bin\r\n");
    uploader.expect_replies(&[213]);
}

#[test]
fn the_registry_is_bounded() {
    let recent = Arc::new(RecentUploads::new(Duration::from_secs(60), 10));
    let mut uploader = Harness::logged_in_sharing(devices(), &recent, "bob");
    let mut checker = Harness::logged_in_sharing(devices(), &recent, "bob");
    for n in 0..15 {
        upload(&mut uploader, &format!("f{n}.jpg"), 1);
    }
    checker.send("SIZE f0.jpg\r\nSIZE f4.jpg\r\nSIZE f5.jpg\r\nSIZE f14.jpg\r\n");
    checker.expect_replies(&[550, 550, 213, 213]);
}
