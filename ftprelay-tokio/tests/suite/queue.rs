//! A store-and-forward processor (a durable queue) over real sockets: a full
//! queue refuses uploads with `452` before a byte is received, and a held
//! upload (devices profile) is held before its `226`, then processed under
//! its final name from the same spool file, or forgotten.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use super::support::{TestRelay, config, payload};

super::register::suite_tests!(
    queue,
    a_full_queue_refuses_an_upload_with_452_and_receives_nothing(async {
        let relay = queue_relay(false).await;
        relay.record.queue_full.store(true, Ordering::SeqCst);
        let mut client = relay.logged_in().await;
        let data_addr = client.pasv().await;
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        // The client may send before it is told to: nothing is received.
        data.write_all(b"not taken").await.expect("data write");
        let refused = client.cmd("STOR a.jpg").await;
        assert_eq!(refused.code, 452, "{refused:?}");
        drop(data);
        assert_eq!(relay.record.admissions(), 1);
        assert!(relay.spool_files().is_empty(), "{:?}", relay.spool_files());
        assert!(relay.record.seen().is_empty(), "processed a refused upload");
        // Room again: the same session uploads.
        relay.record.queue_full.store(false, Ordering::SeqCst);
        assert_eq!(client.upload("a.jpg", b"taken").await.code, 226);
        assert_eq!(relay.record.admissions(), 2);
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].bytes, b"taken");
        assert!(relay.record.held().is_empty(), "not a held upload");
    }),
    a_held_upload_is_held_before_its_226_then_processed_from_the_same_file(async {
        let relay = queue_relay(true).await;
        let mut client = relay.logged_in().await;
        let bytes = payload(4321);
        assert_eq!(client.upload("/cam/snap_tmp.jpg", &bytes).await.code, 226);
        // The 226 came after the hold returned.
        let held = relay.record.held();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].path, b"/cam/snap_tmp.jpg");
        assert!(held[0].bytes == bytes);
        assert!(
            relay.record.seen().is_empty(),
            "processed before its rename"
        );
        assert_eq!(
            relay.spool_files(),
            [held[0].spool.clone()],
            "kept for the rename"
        );
        assert_eq!(client.cmd("RNFR /cam/snap_tmp.jpg").await.code, 350);
        assert_eq!(client.cmd("RNTO /cam/snap.jpg").await.code, 250);
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, b"/cam/snap.jpg");
        assert_eq!(seen[0].spool, held[0].spool, "the held spool file");
        assert!(seen[0].bytes == bytes);
        assert!(relay.record.forgotten().is_empty());
        relay.wait_spool_empty().await;
    }),
    a_held_upload_deleted_before_its_rename_is_forgotten_then_its_file_deleted(async {
        let relay = queue_relay(true).await;
        let mut client = relay.logged_in().await;
        assert_eq!(client.upload("testftp.tmp", b"test").await.code, 226);
        assert_eq!(client.cmd("DELE testftp.tmp").await.code, 250);
        assert_eq!(client.cmd("QUIT").await.code, 221);
        assert!(client.is_closed().await);
        let (held, forgotten) = (relay.record.held(), relay.record.forgotten());
        assert_eq!(forgotten.len(), 1, "{forgotten:?}");
        assert_eq!(forgotten[0].spool, held[0].spool);
        assert!(
            forgotten[0].spool_existed,
            "forgotten after its file was deleted"
        );
        assert!(relay.record.seen().is_empty());
        relay.wait_spool_empty().await;
    }),
    // curl uploads to a temporary name and renames after the transfer
    // (`-Q -RNFR/-RNTO`), as cameras that run it do.
    curl_puts_to_a_temporary_name_held_by_the_queue_then_renames(async {
        let relay = queue_relay(true).await;
        let dir = tempfile::tempdir().expect("dir");
        let bytes = payload(7777);
        let file = dir.path().join("local.bin");
        std::fs::write(&file, &bytes).expect("write");
        let url = format!(
            "ftp://bob:secret@127.0.0.1:{}/cam/report.pdf.part",
            relay.port()
        );
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new("curl")
                .args(["-sS", "--max-time", "30", "-T"])
                .arg(&file)
                .args(["-Q", "-RNFR report.pdf.part", "-Q", "-RNTO report.pdf"])
                .arg(&url)
                .output(),
        )
        .await
        .expect("curl finishes")
        .expect("curl runs (is it installed? .ci/run installs it)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (held, seen) = (relay.record.held(), relay.record.seen());
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].path, b"/cam/report.pdf.part");
        assert_eq!(seen.len(), 1, "processed once, under the final name");
        assert_eq!(seen[0].path, b"/cam/report.pdf");
        assert_eq!(seen[0].spool, held[0].spool);
        assert!(seen[0].bytes == bytes);
        assert_eq!(relay.record.admissions(), 1);
        assert!(relay.record.forgotten().is_empty());
        relay.wait_spool_empty().await;
    }),
);

/// A relay whose processors store and forward; `devices`: in the devices
/// profile, with `test*` names held too.
async fn queue_relay(devices: bool) -> TestRelay {
    let mut config = config();
    if devices {
        config.session.profile = crate::proto::Profile::Devices;
        config.session.temporary_names.push("test*".to_owned());
    }
    let relay = TestRelay::with_config(config).await;
    relay.record.store_and_forward.store(true, Ordering::SeqCst);
    relay
}
