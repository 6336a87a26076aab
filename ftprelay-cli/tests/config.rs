//! The configuration: the TOML file and the flags that override it, and
//! what bad input, a taken address or a planted spool lock get.

mod support;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{BIN, Relay, assert_fails, curl_upload, ftprelay, stderr, write};

support::on_every_runtime!(
    a_config_file_with_per_user_destinations({
        let work = tempfile::tempdir().expect("dir");
        let scans = work.path().join("scans");
        let hash = ftprelay(&["hash-password"], "cam-pw\n");
        assert!(hash.status.success());
        let hash = String::from_utf8(hash.stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        let config = format!(
            r#"
idle_timeout = 60
max_file_size = "1M"

[[users]]
name = "scanner"
password = "scan-pw"
dir = "{scans}"

[[users]]
name = "camera"
password_hash = "{hash}"
exec = "cp \"$1\" {work}/camera-$FTPRELAY_FILE_NAME"
"#,
            scans = scans.display(),
            work = work.path().display()
        );
        let config_path = write(work.path(), "ftprelay.toml", config.as_bytes());
        let relay = Relay::start(&["--config", &config_path.display().to_string()]);
        // lftp for one user, curl for the other.
        write(work.path(), "page.pdf", b"a scanned page");
        let lftp = Command::new("lftp")
            .args(["-u", "scanner,scan-pw", "-p", &relay.port(), "-e"])
            .arg(format!(
                "set net:max-retries 1; set ftp:ssl-allow no; put {} -o page.pdf; quit",
                work.path().join("page.pdf").display()
            ))
            .arg("127.0.0.1")
            .output()
            .expect("lftp");
        assert!(lftp.status.success(), "{}", stderr(&lftp));
        assert_eq!(
            std::fs::read(scans.join("page.pdf")).expect("scan"),
            b"a scanned page"
        );
        let file = write(work.path(), "snap", b"a snapshot");
        let curl = curl_upload(&relay, "camera:cam-pw", "snap.jpg", &file);
        assert!(curl.status.success(), "{}", stderr(&curl));
        assert_eq!(
            std::fs::read(work.path().join("camera-snap.jpg")).expect("snap"),
            b"a snapshot"
        );
        // The hash is the password: a wrong one is refused.
        let wrong = curl_upload(&relay, "camera:nope", "x.jpg", &file);
        assert!(stderr(&wrong).contains("530"), "{}", stderr(&wrong));
        // The start-up line names users and processors, never passwords.
        let log = relay.log();
        assert!(
            log.contains("scanner (dir") && log.contains("camera (exec"),
            "{log}"
        );
        assert!(
            !log.contains("scan-pw") && !log.contains(&hash),
            "a secret is in the log"
        );
    }),
    flags_override_the_config_file({
        let work = tempfile::tempdir().expect("dir");
        // The file's address cannot be bound here and its processor would fail:
        // the flags' address and processor are the ones used.
        let config = write(
            work.path(),
            "ftprelay.toml",
            b"listen = [\"192.0.2.1:21\"]\nexec = \"exit 1\"\n[[users]]\nname = \"demo\"\npassword = \"demo\"\n",
        );
        let relay = Relay::start(&["--config", &config.display().to_string(), "--discard"]);
        let file = write(work.path(), "local", b"x");
        assert!(
            curl_upload(&relay, "demo:demo", "a.bin", &file)
                .status
                .success()
        );
    }),
    a_minimum_upload_rate_from_flags_or_config_file({
        let work = tempfile::tempdir().expect("dir");
        let config = write(
            work.path(),
            "ftprelay.toml",
            b"min_upload_rate = \"8K\"\nupload_rate_grace = 1\n",
        );
        let config = config.display().to_string();
        let flags = ["--min-upload-rate", "8K", "--upload-rate-grace", "1"];
        let from_file = ["--config", config.as_str()];
        for setting in [&flags[..], &from_file[..]] {
            let mut args = vec!["--user", "demo:demo", "--discard"];
            args.extend_from_slice(setting);
            let relay = Relay::start(&args);
            let reply = trickled_upload(relay.addr.port(), 0);
            assert!(reply.starts_with("426"), "{setting:?}: {reply}");
            assert!(reply.contains("8192 bytes per second"), "{reply}");
            assert!(relay.spool_is_empty());
            // A normal upload is far faster.
            let file = write(work.path(), "local", &vec![7; 100_000]);
            assert!(
                curl_upload(&relay, "demo:demo", "fast.bin", &file)
                    .status
                    .success()
            );
        }
        assert_fails(
            &ftprelay(
                &["--user", "a:b", "--discard", "--upload-rate-grace", "0"],
                "",
            ),
            2,
            "upload rate grace",
        );
        assert_fails(
            &ftprelay(
                &["--user", "a:b", "--discard", "--min-upload-rate", "fast"],
                "",
            ),
            2,
            "fast",
        );
        assert_fails(
            &ftprelay(
                &["--user", "a:b", "--discard", "--tls-require-session-reuse"],
                "",
            ),
            2,
            "--tls-cert",
        );
    }),
);

#[test]
fn bad_input_is_one_line_and_status_2() {
    let work = tempfile::tempdir().expect("dir");
    assert_fails(&ftprelay(&["--bogus"], ""), 2, "--bogus");
    assert_fails(&ftprelay(&["--user", "demo:demo"], ""), 2, "no destination");
    assert_fails(&ftprelay(&["--discard"], ""), 2, "no users");
    assert_fails(
        &ftprelay(&["--user", "demo", "--discard"], ""),
        2,
        "NAME:PASSWORD",
    );
    assert_fails(
        &ftprelay(&["--listen", "nowhere", "--discard", "--user", "a:b"], ""),
        2,
        "nowhere",
    );
    assert_fails(
        &ftprelay(&["--config", "/nonexistent.toml", "--discard"], ""),
        2,
        "/nonexistent.toml",
    );
    let unknown = write(
        work.path(),
        "bad.toml",
        b"listen = [\"127.0.0.1:0\"]\ncolour = \"blue\"\n",
    );
    assert_fails(
        &ftprelay(
            &[
                "--config",
                &unknown.display().to_string(),
                "--discard",
                "--user",
                "a:b",
            ],
            "",
        ),
        2,
        "bad.toml:2: unknown field `colour`",
    );
    let bad_hash = write(work.path(), "users", b"alice:not-a-hash\n");
    assert_fails(
        &ftprelay(
            &["--users", &bad_hash.display().to_string(), "--discard"],
            "",
        ),
        2,
        "users:1:",
    );
    assert_fails(
        &ftprelay(&["--http", "ftp://x", "--user", "a:b"], ""),
        2,
        "http",
    );
    assert_fails(&ftprelay(&["hash-password"], ""), 2, "empty");
}

#[test]
fn an_address_in_use_is_status_1() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let output = ftprelay(&["--listen", &addr, "--user", "a:b", "--discard"], "");
    assert_fails(&output, 1, &addr);
}

#[test]
fn a_planted_spool_lock_fails_the_start_clearly() {
    let spool = tempfile::tempdir().expect("dir");
    let elsewhere = tempfile::tempdir().expect("dir");
    let target = elsewhere.path().join("created-through-the-link");
    let lock = spool.path().join(".ftprelay-spool.lock");
    std::os::unix::fs::symlink(&target, &lock).expect("symlink");
    let spool_arg = spool.path().display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--user",
        "a:b",
        "--discard",
        "--spool-dir",
        &spool_arg,
    ];
    assert_fails(&ftprelay_bounded(&args), 1, "not a regular file");
    assert!(!target.exists(), "the link's target was created");
    std::fs::remove_file(&lock).expect("remove");
    let made = Command::new("mkfifo").arg(&lock).status().expect("mkfifo");
    assert!(made.success());
    assert_fails(&ftprelay_bounded(&args), 1, "not a regular file");
}

/// A start-up that must fail: the binary's output, or a failure if it is
/// still running after 10 s (then killed).
fn ftprelay_bounded(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ftprelay");
    for _ in 0..1000 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    panic!("ftprelay hung at start-up: {}", stderr(&output));
}

/// A passive upload that sends `head` bytes, then one byte every 200 ms
/// (for 30 s at most): the reply it got.
fn trickled_upload(port: u16, head: usize) -> String {
    let script = r#"
import ftplib, sys, threading, time
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
data = ftp.transfercmd("STOR trickle.bin")
data.sendall(b"h" * int(sys.argv[2]))
def trickle():
    for _ in range(150):
        try:
            data.send(b"x")
        except OSError:
            return
        time.sleep(0.2)
threading.Thread(target=trickle, daemon=True).start()
try:
    print(ftp.getresp())
except ftplib.all_errors as ended:
    print(ended)
"#;
    let output = Command::new("python3")
        .args(["-c", script, &port.to_string(), &head.to_string()])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
