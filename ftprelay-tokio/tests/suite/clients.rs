//! Real FTP clients against a real relay on loopback: curl, python3 ftplib,
//! lftp and busybox ftpput. Each checks the bytes the processor saw, that
//! the client's success came only after the processor returned, and that
//! the spool is empty afterwards.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use super::support::{TestRelay, payload};
use tokio::process::Command;

super::register::suite_tests!(
    clients,
    curl_epsv(async {
        curl_upload(&[]).await;
    }),
    curl_pasv(async {
        curl_upload(&["--disable-epsv"]).await;
    }),
    curl_active(async {
        curl_upload(&["-P", "127.0.0.1"]).await;
    }),
    curl_reports_a_processor_failure(async {
        let relay = TestRelay::start().await;
        let dir = tempfile::tempdir().expect("dir");
        let file = write_file(dir.path(), "local.bin", b"data");
        let url = format!("ftp://127.0.0.1:{}/fail.txt", relay.port());
        let (output, _) = run(Command::new("curl")
            .args(["-sS", "--user", "bob:secret", "-T"])
            .arg(&file)
            .arg(&url))
        .await;
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("451"),
            "curl shows the 451: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(relay.spool_files().is_empty());
    }),
    python_ftplib_passive(async {
        python_upload(true).await;
    }),
    python_ftplib_active(async {
        python_upload(false).await;
    }),
    lftp_put_and_mput(async {
        let relay = relay_with_slow_processor().await;
        let dir = tempfile::tempdir().expect("dir");
        let files: Vec<(String, Vec<u8>)> = (0..3)
            .map(|i| (format!("page{i}.pdf"), payload(10_000 + i * 777)))
            .collect();
        for (name, bytes) in &files {
            write_file(dir.path(), name, bytes);
        }
        let commands = format!(
            "set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; \
             put {dir}/page0.pdf -o first.pdf; mput {dir}/page1.pdf {dir}/page2.pdf; quit",
            dir = dir.path().display()
        );
        let (output, exit) = run(Command::new("lftp")
            .args(["-u", "bob,secret", "-p"])
            .arg(relay.port().to_string())
            .arg("-e")
            .arg(&commands)
            .arg("127.0.0.1"))
        .await;
        assert_success(&output);
        let mut seen = relay.record.seen();
        seen.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let names: Vec<&[u8]> = seen.iter().map(|s| s.file_name.as_slice()).collect();
        assert_eq!(names, vec![&b"first.pdf"[..], b"page1.pdf", b"page2.pdf"]);
        assert!(seen[0].bytes == files[0].1);
        assert!(seen[1].bytes == files[1].1);
        assert!(seen[2].bytes == files[2].1);
        assert!(seen.iter().all(|s| s.returned_at <= exit));
        assert!(relay.spool_files().is_empty());
    }),
    busybox_ftpput(async {
        let relay = relay_with_slow_processor().await;
        let dir = tempfile::tempdir().expect("dir");
        let bytes = payload(123_456);
        let file = write_file(dir.path(), "snap.jpg", &bytes);
        let (output, exit) = run(Command::new("busybox")
            .args(["ftpput", "-u", "bob", "-p", "secret", "-P"])
            .arg(relay.port().to_string())
            .arg("127.0.0.1")
            .arg("/snap_0001.jpg")
            .arg(&file))
        .await;
        assert_success(&output);
        assert_one_upload(&relay, "snap_0001.jpg", &bytes, exit);
        assert_eq!(relay.record.seen()[0].name, b"/snap_0001.jpg");
    }),
);

/// Runs a client command; returns its output and the moment it exited.
async fn run(command: &mut Command) -> (Output, Instant) {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the client finishes within 60 s")
        .expect("the client runs (is it installed? .ci/run installs it)");
    (output, Instant::now())
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "client failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// The processor takes this long, so that a 226 sent before it returned
/// would let the client exit first.
const PROCESSING: Duration = Duration::from_millis(300);

pub(crate) async fn relay_with_slow_processor() -> TestRelay {
    let relay = TestRelay::start().await;
    *relay.record.delay.lock().expect("lock") = PROCESSING;
    relay
}

/// Checks one upload seen by the processor against what was sent.
fn assert_one_upload(relay: &TestRelay, file_name: &str, bytes: &[u8], client_exit: Instant) {
    let seen = relay.record.seen();
    assert_eq!(seen.len(), 1, "exactly one upload processed");
    assert_eq!(seen[0].file_name, file_name.as_bytes());
    assert_eq!(seen[0].user, "bob");
    assert!(seen[0].bytes == bytes, "the processor saw other bytes");
    assert_eq!(seen[0].size, bytes.len() as u64);
    assert_eq!(seen[0].mode, 0o600, "spool files are private");
    assert!(
        seen[0].returned_at <= client_exit,
        "the client finished before the processor returned"
    );
    assert!(relay.spool_files().is_empty(), "spool not empty");
}

async fn curl_upload(extra: &[&str]) {
    let relay = relay_with_slow_processor().await;
    let dir = tempfile::tempdir().expect("dir");
    let bytes = payload(300_000);
    let file = write_file(dir.path(), "local.bin", &bytes);
    let url = format!("ftp://127.0.0.1:{}/scan.pdf", relay.port());
    let (output, exit) = run(Command::new("curl")
        .args(["-sS", "--user", "bob:secret", "-T"])
        .arg(&file)
        .args(extra)
        .arg(&url))
    .await;
    assert_success(&output);
    assert_one_upload(&relay, "scan.pdf", &bytes, exit);
}

async fn python_upload(passive: bool) {
    let relay = relay_with_slow_processor().await;
    let dir = tempfile::tempdir().expect("dir");
    let bytes = payload(200_000);
    let file = write_file(dir.path(), "local.bin", &bytes);
    let script = r#"
import ftplib, sys
port, path, passive = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port, timeout=30)
ftp.login("bob", "secret")
ftp.set_pasv(passive)
with open(path, "rb") as f:
    reply = ftp.storbinary("STOR photo.jpg", f)
assert reply.startswith("226"), reply
ftp.quit()
"#;
    let (output, exit) = run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(relay.port().to_string())
        .arg(&file)
        .arg(if passive { "1" } else { "0" }))
    .await;
    assert_success(&output);
    assert_one_upload(&relay, "photo.jpg", &bytes, exit);
}
