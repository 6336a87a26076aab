//! The device compatibility matrix (`ftprelay-proto/DEVICES.md` §6) against the devices
//! profile: each device family's command sequence, byte for byte, over real
//! sockets, with the replies it needs and what the processor received.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use super::support::{TestRelay, config, payload};

super::register::suite_tests!(
    devices,
    busybox_ftpput_with_a_full_path(async {
        let relay = devices_relay().await;
        let dir = tempfile::tempdir().expect("dir");
        let bytes = payload(5000);
        let file = write_file(dir.path(), &bytes);
        run(Command::new("busybox")
            .args([
                "ftpput",
                "-u",
                "bob",
                "-p",
                "secret",
                "-P",
                &relay.port().to_string(),
                "127.0.0.1",
            ])
            .arg("/NVR01/ch1/snap_0001.jpg")
            .arg(&file))
        .await;
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, b"/NVR01/ch1/snap_0001.jpg");
        assert!(seen[0].bytes == bytes);
        assert!(relay.spool_files().is_empty());
    }),
    yi_hack_pipelines_mkd_before_reading_the_greeting(async {
        let relay = devices_relay().await;
        let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
        stream
            .write_all(
                b"USER bob\r\nPASS secret\r\nMKD record\r\nMKD record/2024Y05M01D\r\nQUIT\r\n",
            )
            .await
            .expect("write");
        stream.shutdown().await.expect("half-close");
        let mut replies = String::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut replies))
            .await
            .expect("answered")
            .expect("read");
        let lines: Vec<&str> = replies.lines().collect();
        assert_eq!(lines.len(), 6, "{replies}");
        assert!(lines[3].starts_with("257 \"/record\""), "{replies}");
        assert!(
            lines[4].starts_with("257 \"/record/2024Y05M01D\""),
            "{replies}"
        );
        assert!(lines[5].starts_with("221"), "{replies}");
    }),
    esp32_cam_sequence(async {
        let relay = devices_relay().await;
        let mut client = relay.client().await;
        // ESP32 firmware needs exactly 331, and sends "Type I".
        assert_eq!(client.cmd("USER bob").await.code, 331);
        assert_eq!(client.cmd("PASS secret").await.code, 230);
        assert_eq!(client.cmd("Type I").await.code, 200);
        // PASV before CWD: the listener survives the folder commands.
        let data_addr = client.pasv().await;
        assert_eq!(client.cmd("CWD /esp32cam").await.code, 250);
        assert_eq!(client.cmd("MKD /esp32cam").await.code, 257);
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        // 150, never 125.
        assert_eq!(client.cmd("STOR pic_001.jpg").await.code, 150);
        data.write_all(b"\xFF\xD8jpeg").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(client.cmd("SITE CHMOD 644 pic_001.jpg").await.code, 200);
        let seen = relay.record.seen();
        assert_eq!(seen[0].path, b"/esp32cam/pic_001.jpg");
    }),
    curl_create_dirs_with_each_ftp_method(async {
        let relay = devices_relay().await;
        let dir = tempfile::tempdir().expect("dir");
        let file = write_file(dir.path(), b"curl");
        for method in ["multicwd", "singlecwd", "nocwd"] {
            let url = format!(
                "ftp://bob:secret@127.0.0.1:{}/cam/2024/05/{method}.jpg",
                relay.port()
            );
            run(Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "30",
                    "--ftp-create-dirs",
                    "--ftp-method",
                    method,
                    "-T",
                ])
                .arg(&file)
                .arg(&url))
            .await;
        }
        let mut paths: Vec<Vec<u8>> = relay.record.seen().into_iter().map(|s| s.path).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                &b"/cam/2024/05/multicwd.jpg"[..],
                b"/cam/2024/05/nocwd.jpg",
                b"/cam/2024/05/singlecwd.jpg"
            ]
        );
    }),
    lftp_puts_to_a_temporary_name_then_renames(async {
        let relay = devices_relay().await;
        let dir = tempfile::tempdir().expect("dir");
        let bytes = payload(7777);
        let file = write_file(dir.path(), &bytes);
        let commands = format!(
            "set net:max-retries 1; set ftp:ssl-allow no; put {} -o report.pdf.part; mv report.pdf.part report.pdf; quit",
            file.display()
        );
        run(Command::new("lftp").args([
            "-u",
            "bob,secret",
            "-p",
            &relay.port().to_string(),
            "-e",
            &commands,
            "127.0.0.1",
        ]))
        .await;
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1, "processed once, under the final name");
        assert_eq!(seen[0].file_name, b"report.pdf");
        assert!(seen[0].bytes == bytes);
        assert!(relay.spool_files().is_empty());
    }),
    windows_ftp_exe_sequence(async {
        let relay = devices_relay().await;
        let mut client = relay.client().await;
        // OPTS UTF8 ON before USER, XPWD/XMKD, active PORT.
        assert_eq!(client.cmd("OPTS UTF8 ON").await.code, 200);
        client.login("bob", "secret").await;
        assert_eq!(
            client.cmd("XPWD").await.text,
            "\"/\" is the current directory."
        );
        assert_eq!(client.cmd("XMKD scans").await.code, 257);
        assert_eq!(client.cmd("CWD scans").await.code, 250);
        assert_eq!(client.cmd("TYPE A").await.code, 200);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let port = listener.local_addr().expect("address").port();
        let [p1, p2] = port.to_be_bytes();
        assert_eq!(
            client.cmd(&format!("PORT 127,0,0,1,{p1},{p2}")).await.code,
            200
        );
        client.send("STOR doc.txt").await;
        let (mut data, _) = listener.accept().await.expect("the relay connects");
        assert_eq!(client.reply().await.code, 150);
        data.write_all(b"line\r\n").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(relay.record.seen()[0].path, b"/scans/doc.txt");
    }),
    fluentftp_sizes_before_uploading(async {
        let relay = devices_relay().await;
        let mut client = relay.logged_in().await;
        assert_eq!(client.cmd("SIZE invoice.pdf").await.code, 550);
        assert_eq!(client.upload("invoice.pdf", &payload(321)).await.code, 226);
        assert_eq!(client.cmd("SIZE invoice.pdf").await.text, "321");
    }),
    motioneye_lists_each_folder_and_tests_mkd_rmd(async {
        let relay = devices_relay().await;
        let mut client = relay.logged_in().await;
        for folder in ["/", "/cam1", "/cam1/2024-05-01"] {
            let listing = client.list(&format!("NLST {folder}")).await;
            assert!(listing.is_empty(), "{folder}: {listing:?}");
        }
        assert_eq!(client.cmd("MKD motioneye_test").await.code, 257);
        assert_eq!(client.cmd("RMD motioneye_test").await.code, 250);
        assert_eq!(client.upload("/cam1/a.jpg", b"x").await.code, 226);
        assert_eq!(client.list("NLST /cam1").await, b"a.jpg\r\n");
    }),
    legacy_quirks(async {
        let relay = devices_relay().await;
        let mut client = relay.client().await;
        // Lowercase verbs and bare LF line ends.
        client.send_raw(b"user bob\npass secret\n").await;
        assert_eq!(client.reply().await.code, 331);
        assert_eq!(client.reply().await.code, 230);
        for (line, code) in [
            ("TYPE i", 200),
            ("TYPE A N", 200),
            ("TYPE L 8", 200),
            ("MODE S", 200),
            ("STRU F", 200),
            ("STRU R", 200),
            ("ALLO 1234", 200),
            ("REIN", 502),
        ] {
            assert_eq!(client.cmd(line).await.code, code, "{line}");
        }
        assert!(client.list("LIST -a").await.is_empty());
        // A GBK file name in a backslash path.
        let data_addr = client.pasv().await;
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        client
            .send_raw(b"STOR \\cam\\\xC4\xE3\xBA\xC3.jpg\r\n")
            .await;
        assert_eq!(client.reply().await.code, 150);
        data.write_all(b"gbk").await.expect("write");
        drop(data);
        assert_eq!(client.reply().await.code, 226);
        assert_eq!(relay.record.seen()[0].path, b"/cam/\xC4\xE3\xBA\xC3.jpg");
    }),
    intellinet_deletes_uploads_to_a_temporary_name_and_renames(async {
        let relay = devices_relay().await;
        let mut client = relay.logged_in().await;
        assert_eq!(client.cmd("DELE camera.jpg").await.code, 250);
        assert_eq!(client.upload("camera_tmp.jpg", b"frame").await.code, 226);
        assert!(
            relay.record.seen().is_empty(),
            "processed before the rename"
        );
        assert_eq!(client.cmd("DELE camera.jpg").await.code, 250);
        assert_eq!(client.cmd("RNFR camera_tmp.jpg").await.code, 350);
        assert_eq!(client.cmd("RNTO camera.jpg").await.code, 250);
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].file_name, b"camera.jpg");
        assert_eq!(seen[0].bytes, b"frame");
    }),
    a_test_upload_then_deleted_is_never_processed(async {
        let relay = devices_relay().await;
        let mut client = relay.logged_in().await;
        assert_eq!(client.upload("testftp.txt", b"test").await.code, 226);
        assert_eq!(client.cmd("DELE testftp.txt").await.code, 250);
        assert_eq!(client.cmd("QUIT").await.code, 221);
        assert!(client.is_closed().await);
        assert!(relay.record.seen().is_empty());
        assert!(relay.spool_files().is_empty());
    }),
    auth_tls_refused_then_a_plain_login(async {
        let relay = devices_relay().await;
        let mut client = relay.client().await;
        assert_eq!(client.cmd("AUTH TLS").await.code, 502);
        client.login("bob", "secret").await;
        assert_eq!(client.cmd("MODE S").await.code, 200);
        assert_eq!(client.upload("/ch1/x.jpg", b"reolink").await.code, 226);
    }),
    the_strict_profile_still_refuses_all_this(async {
        let relay = TestRelay::start().await;
        let mut client = relay.logged_in().await;
        client.pasv().await;
        for line in [
            "MKD a",
            "CWD a",
            "LIST",
            "NLST",
            "SIZE a",
            "DELE a",
            "RNFR a",
            "SITE CHMOD 644 a",
        ] {
            assert_eq!(client.cmd(line).await.code, 550, "{line}");
        }
    }),
    // rclone with its defaults: four transfers and eight checkers, each on a
    // connection of its own, and every upload checked (size, listing) on
    // another connection than the one that uploaded it. Each file must be
    // uploaded, and processed, exactly once.
    rclone_with_parallel_connections_uploads_each_file_once(async {
        let relay = devices_relay().await;
        let dir = tempfile::tempdir().expect("dir");
        let source = dir.path().join("src");
        std::fs::create_dir(&source).expect("dir");
        let mut expected = std::collections::BTreeMap::new();
        for n in 0..50 {
            let bytes = payload(1000 + n * 37);
            std::fs::write(source.join(format!("file{n:02}.bin")), &bytes).expect("write");
            expected.insert(format!("/backup/file{n:02}.bin"), bytes);
        }
        let obscured = run(Command::new("rclone").args(["obscure", "secret"])).await;
        let password = String::from_utf8_lossy(&obscured.stdout).trim().to_owned();
        let output = run(Command::new("rclone")
            .args(["copy", "--config", "/dev/null", "--retries", "1"])
            .arg(&source)
            .arg(":ftp:backup")
            .args(["--ftp-host", "127.0.0.1", "--ftp-port"])
            .arg(relay.port().to_string())
            .args(["--ftp-user", "bob", "--ftp-pass", &password]))
        .await;
        let seen = relay.record.seen();
        let mut counts = std::collections::BTreeMap::new();
        for upload in &seen {
            *counts
                .entry(String::from_utf8_lossy(&upload.path).into_owned())
                .or_insert(0) += 1;
            let path = String::from_utf8_lossy(&upload.path).into_owned();
            assert_eq!(expected.get(&path), Some(&upload.bytes), "{path}");
        }
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty() && seen.len() == 50,
            "{} uploads for 50 files, repeated: {repeated:?}\n{}",
            seen.len(),
            String::from_utf8_lossy(&output.stderr)
        );
    }),
);

async fn devices_relay() -> TestRelay {
    let mut config = config();
    config.session.profile = crate::proto::Profile::Devices;
    // "Test" buttons upload files like these, then delete them.
    config.session.temporary_names.push("test*".to_owned());
    TestRelay::with_config(config).await
}

fn write_file(dir: &std::path::Path, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join("local.bin");
    std::fs::write(&path, bytes).expect("write");
    path
}

async fn run(command: &mut Command) -> std::process::Output {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the client finishes")
        .expect("the client runs");
    assert!(
        output.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
