//! The `ftprelay` binary as a user runs it: a separate process, real
//! clients (curl, python3 ftplib, lftp), real signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ftprelay");

thread_local! {
    /// The `--runtime` the relays of this test run on.
    static RUNTIME: std::cell::Cell<&'static str> = const { std::cell::Cell::new("tokio") };
}

/// Each named test again, with the relay on smol.
macro_rules! on_smol_too {
    ($($name:ident),* $(,)?) => {
        mod on_smol {
            $(
                #[test]
                fn $name() {
                    super::RUNTIME.with(|runtime| runtime.set("smol"));
                    super::$name();
                }
            )*
        }
    };
}

on_smol_too!(
    exec_gets_the_file_and_its_description,
    exec_failure_is_451,
    exec_past_the_process_timeout_is_killed_and_answered_451,
    dir_never_overwrites_a_name,
    dir_works_across_file_systems,
    http_posts_the_file_and_a_2xx_is_226,
    http_non_2xx_is_451,
    discard_logs_and_drops,
    a_config_file_with_per_user_processors,
    users_from_a_file_of_hashes,
    flags_override_the_config_file,
    sigterm_during_an_upload_lets_it_finish,
    sigterm_when_idle_exits_0,
    the_devices_profile_recreates_folders_under_dir_and_tells_exec_the_path,
    ftps_explicit_and_implicit_and_a_certificate_reloaded_on_sighup,
    tls_required_refuses_plain_clients,
    dir_names_never_escape_the_directory,
    dir_never_follows_a_planted_link,
    a_burst_of_failed_logins_costs_bounded_memory,
    exec_timeouts_leave_no_process_and_no_open_spool_file,
    exec_a_background_child_does_not_hold_up_success,
    exec_non_utf8_output_does_not_kill_the_command,
    http_a_request_given_up_on_never_completes_its_body,
    tls_session_reuse_required_by_flag_or_config_file,
    a_minimum_upload_rate_from_flags_or_config_file,
);

/// A running `ftprelay`, its log collected as it is written.
struct Relay {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
    spool: tempfile::TempDir,
}

impl Relay {
    /// Starts `ftprelay ARGS --listen 127.0.0.1:0 --spool-dir TMP` and waits
    /// for its "listening" line.
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`Relay::start`] with `env` added to the relay's environment (which
    /// its `--exec` commands inherit).
    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let spool = tempfile::tempdir().expect("spool");
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .args(["--runtime", RUNTIME.with(|runtime| runtime.get())])
            .args(["--listen", "127.0.0.1:0", "--spool-dir"])
            .arg(spool.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ftprelay");
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                collected
                    .lock()
                    .expect("lock")
                    .push_str(&format!("{line}\n"));
                let _ = sender.send(line);
            }
        });
        let mut relay = Self {
            child,
            addr: "0.0.0.0:0".parse().expect("address"),
            log,
            lines,
            spool,
        };
        let listening = relay.wait_for_line("ftprelay listening");
        let addr = listening
            .split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("listen= in the listening line");
        relay.addr = addr.parse().expect("the listening address");
        relay
    }

    /// Waits (at most 20 s) for a log line containing `needle`.
    fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}; log:\n{}", self.log()),
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().expect("lock").clone()
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn url(&self, user: &str, name: &str) -> String {
        format!("ftp://{user}@127.0.0.1:{}/{name}", self.addr.port())
    }

    /// No file in the spool but its lock file.
    fn spool_is_empty(&self) -> bool {
        std::fs::read_dir(self.spool.path())
            .expect("spool")
            .all(|e| e.expect("entry").file_name() == ".ftprelay-spool.lock")
    }

    /// SIGTERM, then the exit status (at most 30 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        self.wait()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("ftprelay did not exit; log:\n{}", self.log());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn curl_upload(relay: &Relay, user: &str, name: &str, file: &Path) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "-T"])
        .arg(file)
        .arg(relay.url(user, name))
        .output()
        .expect("curl")
}

/// `curl -T FILE --ftp-create-dirs URL`.
fn curl_creating_dirs(file: &Path, url: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--ftp-create-dirs", "-T"])
        .arg(file)
        .arg(url)
        .output()
        .expect("curl")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// Runs the binary to completion with `stdin`; returns its output.
fn ftprelay(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ftprelay");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    child.wait_with_output().expect("output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error contract: one line on standard error, the status, no panic.
#[track_caller]
fn assert_fails(output: &Output, code: i32, mentions: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{text}");
    assert_eq!(text.lines().count(), 1, "one line expected: {text}");
    assert!(text.starts_with("ftprelay: "), "{text}");
    assert!(text.contains(mentions), "{mentions:?} not in {text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn exec_gets_the_file_and_its_description() {
    let work = tempfile::tempdir().expect("dir");
    let out = work.path().join("out");
    let command = format!(
        "cat \"$1\" > {out}.data && printf '%s|%s|%s|%s' \"$FTPRELAY_FILE_NAME\" \"$FTPRELAY_USER\" \"$FTPRELAY_SIZE\" \"$FTPRELAY_PATH\" > {out}.meta && echo 'a line for the log' >&2",
        out = out.display()
    );
    let mut relay = Relay::start(&["--user", "demo:demo", "--exec", &command]);
    let file = write(work.path(), "local", b"exec me");
    let output = curl_upload(&relay, "demo:demo", "scan.pdf", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read(out.with_extension("data")).expect("data"),
        b"exec me"
    );
    let meta = std::fs::read_to_string(out.with_extension("meta")).expect("meta");
    let parts: Vec<&str> = meta.split('|').collect();
    assert_eq!(&parts[..3], ["scan.pdf", "demo", "7"]);
    assert!(parts[3].starts_with(&relay.spool.path().display().to_string()));
    assert!(relay.spool_is_empty());
    relay.wait_for_line("a line for the log");
    assert!(
        !relay.log().contains("demo:demo"),
        "the password is in the log"
    );
}

#[test]
fn exec_failure_is_451() {
    let relay = Relay::start(&["--user", "demo:demo", "--exec", "exit 3"]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"x");
    let output = curl_upload(&relay, "demo:demo", "scan.pdf", &file);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("451"), "{}", stderr(&output));
    assert!(relay.spool_is_empty());
}

#[test]
fn dir_never_overwrites_a_name() {
    let target = tempfile::tempdir().expect("dir");
    let relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--dir",
        &target.path().display().to_string(),
    ]);
    let script = r#"
import ftplib, io, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
for body in (b"first", b"second"):
    reply = ftp.storbinary("STOR ../report.pdf".replace("../", ""), io.BytesIO(body))
    assert reply.startswith("226"), reply
ftp.quit()
"#;
    let output = Command::new("python3")
        .args(["-c", script, &relay.port()])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read(target.path().join("report.pdf")).expect("first"),
        b"first"
    );
    assert_eq!(
        std::fs::read(target.path().join("report-1.pdf")).expect("second"),
        b"second"
    );
    assert!(relay.spool_is_empty());
}

/// A one-request HTTP server: answers `status` and returns what it got.
fn http_server(status: u16) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = sender.send((head, body));
    });
    (url, received)
}

#[test]
fn http_posts_the_file_and_a_2xx_is_226() {
    let (url, received) = http_server(200);
    let relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"post me");
    let output = curl_upload(&relay, "demo:demo", "cam%201.jpg", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    let (head, body) = received
        .recv_timeout(Duration::from_secs(10))
        .expect("the request");
    assert!(head.starts_with("POST /hook "), "{head}");
    assert_eq!(body, b"post me");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("x-ftprelay-file-name: cam 1.jpg"), "{head}");
    assert!(lower.contains("x-ftprelay-user: demo"), "{head}");
    assert!(lower.contains("x-ftprelay-size: 7"), "{head}");
    assert!(relay.spool_is_empty());
}

#[test]
fn http_non_2xx_is_451() {
    let (url, received) = http_server(500);
    let relay = Relay::start(&["--user", "demo:demo", "--http", &url]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"x");
    let output = curl_upload(&relay, "demo:demo", "a.jpg", &file);
    assert!(received.recv_timeout(Duration::from_secs(10)).is_ok());
    assert!(!output.status.success());
    assert!(stderr(&output).contains("451"), "{}", stderr(&output));
}

#[test]
fn discard_logs_and_drops() {
    let mut relay = Relay::start(&["--user", "demo:demo", "--discard"]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"drop me");
    let output = curl_upload(&relay, "demo:demo", "tmp.bin", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    let line = relay.wait_for_line("discarded");
    assert!(
        line.contains("tmp.bin") && line.contains("size=7"),
        "{line}"
    );
    assert!(relay.spool_is_empty());
}

#[test]
fn a_config_file_with_per_user_processors() {
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
}

#[test]
fn users_from_a_file_of_hashes() {
    let work = tempfile::tempdir().expect("dir");
    let hash = ftprelay(&["hash-password"], "s3cret\n");
    assert!(hash.status.success(), "{}", stderr(&hash));
    let hash = String::from_utf8(hash.stdout).expect("utf-8");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let users = write(
        work.path(),
        "users",
        format!("# operators\n\nalice:{hash}").as_bytes(),
    );
    let relay = Relay::start(&["--users", &users.display().to_string(), "--discard"]);
    let file = write(work.path(), "local", b"x");
    assert!(
        curl_upload(&relay, "alice:s3cret", "a.bin", &file)
            .status
            .success()
    );
    let wrong = curl_upload(&relay, "alice:S3cret", "a.bin", &file);
    assert!(stderr(&wrong).contains("530"), "{}", stderr(&wrong));
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    let work = tempfile::tempdir().expect("dir");
    assert_fails(&ftprelay(&["--bogus"], ""), 2, "--bogus");
    assert_fails(&ftprelay(&["--user", "demo:demo"], ""), 2, "no processor");
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
fn sigterm_during_an_upload_lets_it_finish() {
    let target = tempfile::tempdir().expect("dir");
    let mut relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--dir",
        &target.path().display().to_string(),
    ]);
    // The client sends half, says so, waits for a line, sends the rest.
    let script = r#"
import ftplib, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
conn = ftp.transfercmd("STOR last.bin")
conn.sendall(b"first half, ")
print("HALF", flush=True)
sys.stdin.readline()
conn.sendall(b"second half")
conn.close()
print(ftp.voidresp(), flush=True)
"#;
    let mut client = Command::new("python3")
        .args(["-c", script, &relay.port()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("HALF");
    assert_eq!(line.trim(), "HALF");
    signal(&relay.child, "TERM");
    relay.wait_for_line("signal received");
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("go");
    line.clear();
    out.read_line(&mut line).expect("the final reply");
    assert!(
        line.starts_with("226"),
        "the upload was not answered 226: {line:?}"
    );
    let status = relay.wait();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        relay.log()
    );
    assert_eq!(
        std::fs::read(target.path().join("last.bin")).expect("stored"),
        b"first half, second half"
    );
    let _ = client.wait();
}

#[test]
fn sigterm_when_idle_exits_0() {
    let mut relay = Relay::start(&["--user", "demo:demo", "--discard"]);
    assert!(relay.terminate().success());
}

#[test]
fn exec_past_the_process_timeout_is_killed_and_answered_451() {
    let work = tempfile::tempdir().expect("dir");
    let pid_file = work.path().join("pid");
    let command = format!("echo $$ > {}; exec sleep 60", pid_file.display());
    let relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--process-timeout",
        "1",
        "--exec",
        &command,
    ]);
    let file = write(work.path(), "local", b"x");
    let output = curl_upload(&relay, "demo:demo", "slow.bin", &file);
    assert!(stderr(&output).contains("451"), "{}", stderr(&output));
    let pid = std::fs::read_to_string(&pid_file).expect("the command ran");
    let pid = pid.trim();
    // The child is gone: `kill -0` fails once it is reaped (bounded wait).
    let mut gone = false;
    for _ in 0..500 {
        let alive = Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .expect("kill");
        if !alive.success() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone, "the command outlived its timeout");
    assert!(relay.spool_is_empty());
}

#[test]
fn dir_works_across_file_systems() {
    // The spool is under the temp dir; /dev/shm is another file system
    // (tmpfs), where a hard link fails and the file is copied.
    let shm = Path::new("/dev/shm");
    let target = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("dir on tmpfs")
    } else {
        tempfile::tempdir().expect("dir")
    };
    let relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--dir",
        &target.path().display().to_string(),
    ]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"across");
    assert!(
        curl_upload(&relay, "demo:demo", "x.bin", &file)
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(target.path().join("x.bin")).expect("stored"),
        b"across"
    );
    assert!(relay.spool_is_empty());
}

#[test]
fn flags_override_the_config_file() {
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
}

#[test]
fn the_devices_profile_recreates_folders_under_dir_and_tells_exec_the_path() {
    let work = tempfile::tempdir().expect("dir");
    let target = work.path().join("store");
    let relay = Relay::start(&[
        "--profile",
        "devices",
        "--user",
        "cam:pw",
        "--dir",
        &target.display().to_string(),
    ]);
    let file = write(work.path(), "local", b"frame");
    let url = format!(
        "ftp://cam:pw@127.0.0.1:{}/NVR01/ch1/../ch2/snap.jpg",
        relay.addr.port()
    );
    let output = curl_creating_dirs(&file, &url);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read(target.join("NVR01/ch2/snap.jpg")).expect("stored"),
        b"frame"
    );
    drop(relay);

    let meta = work.path().join("meta");
    let command = format!("printf %s \"$FTPRELAY_REMOTE_PATH\" > {}", meta.display());
    let config = write(
        work.path(),
        "ftprelay.toml",
        format!(
            "[[users]]\nname = \"cam\"\npassword = \"pw\"\nprofile = \"devices\"\nexec = '{command}'\n\n[[users]]\nname = \"plain\"\npassword = \"pw\"\ndiscard = true\n"
        )
        .as_bytes(),
    );
    let relay = Relay::start(&["--config", &config.display().to_string()]);
    let url = format!("ftp://cam:pw@127.0.0.1:{}/a/b/c.jpg", relay.addr.port());
    let output = curl_creating_dirs(&file, &url);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&meta).expect("meta"), "/a/b/c.jpg");
    // The other user keeps the relay's strict profile: no folders.
    let url = format!("ftp://plain:pw@127.0.0.1:{}/a/b/c.jpg", relay.addr.port());
    let output = curl_creating_dirs(&file, &url);
    assert!(!output.status.success(), "the strict user created folders");
}

/// A self-signed certificate for 127.0.0.1 written to `cert` and `key`.
fn write_certificate(cert: &Path, key: &Path) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    std::fs::write(cert, generated.cert.pem()).expect("write");
    std::fs::write(key, generated.key_pair.serialize_pem()).expect("write");
}

fn curl_ftps(url: &str, cacert: &Path, file: &Path) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--ssl-reqd", "--cacert"])
        .arg(cacert)
        .arg("-T")
        .arg(file)
        .arg(url)
        .output()
        .expect("curl")
}

#[test]
fn ftps_explicit_and_implicit_and_a_certificate_reloaded_on_sighup() {
    let work = tempfile::tempdir().expect("dir");
    let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
    write_certificate(&cert, &key);
    let first_cert = work.path().join("first.pem");
    std::fs::copy(&cert, &first_cert).expect("copy");
    let mut relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--discard",
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
        "--tls-implicit-listen",
        "127.0.0.1:0",
    ]);
    let implicit = relay.wait_for_line("ftprelay listening");
    let implicit_port = implicit
        .split("listen=127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the implicit listener's line");
    let file = write(work.path(), "local", b"secret scan");
    let explicit_url = format!("ftp://demo:demo@127.0.0.1:{}/a.bin", relay.addr.port());
    let output = curl_ftps(&explicit_url, &first_cert, &file);
    assert!(output.status.success(), "{}", stderr(&output));
    let implicit_url = format!("ftps://demo:demo@127.0.0.1:{implicit_port}/b.bin");
    let output = curl_ftps(&implicit_url, &first_cert, &file);
    assert!(output.status.success(), "{}", stderr(&output));
    // A new certificate, then SIGHUP: new connections present it.
    write_certificate(&cert, &key);
    signal(&relay.child, "HUP");
    relay.wait_for_line("certificate and key reloaded");
    let output = curl_ftps(&explicit_url, &cert, &file);
    assert!(
        output.status.success(),
        "the new certificate: {}",
        stderr(&output)
    );
    let output = curl_ftps(&explicit_url, &first_cert, &file);
    assert!(
        !output.status.success(),
        "the old certificate is still served"
    );
    assert!(relay.spool_is_empty());
}

#[test]
fn tls_required_refuses_plain_clients() {
    let work = tempfile::tempdir().expect("dir");
    let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
    write_certificate(&cert, &key);
    let relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--discard",
        "--tls-required",
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]);
    let file = write(work.path(), "local", b"x");
    let plain = curl_upload(&relay, "demo:demo", "a.bin", &file);
    assert!(stderr(&plain).contains("530"), "{}", stderr(&plain));
    let url = format!("ftp://demo:demo@127.0.0.1:{}/a.bin", relay.addr.port());
    let output = curl_ftps(&url, &cert, &file);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn bad_tls_input_is_one_line_and_status_2() {
    let work = tempfile::tempdir().expect("dir");
    let junk = write(work.path(), "junk.pem", b"not a certificate");
    let junk = junk.display().to_string();
    assert_fails(
        &ftprelay(
            &[
                "--user",
                "a:b",
                "--discard",
                "--tls-cert",
                &junk,
                "--tls-key",
                &junk,
            ],
            "",
        ),
        2,
        "junk.pem",
    );
    assert_fails(
        &ftprelay(&["--user", "a:b", "--discard", "--tls-cert", &junk], ""),
        2,
        "--tls-key",
    );
    assert_fails(
        &ftprelay(&["--user", "a:b", "--discard", "--tls-required"], ""),
        2,
        "--tls-cert",
    );
}

/// Stores each of `names` (bytes, sent as Latin-1 so that every byte
/// passes as it is) with python's ftplib; returns each STOR's reply code.
fn python_stor_each(relay: &Relay, user: &str, names: &[&[u8]]) -> Vec<String> {
    let hex: Vec<String> = names
        .iter()
        .map(|name| name.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = format!(
        r#"
import ftplib, io, sys
ftp = ftplib.FTP(encoding="latin-1")
ftp.connect("127.0.0.1", {port}, timeout=20)
ftp.login("{user}", "pw")
for name in sys.argv[1:]:
    name = bytes.fromhex(name).decode("latin-1")
    try:
        print(ftp.storbinary("STOR " + name, io.BytesIO(b"payload"))[:3])
    except ftplib.Error as e:
        print(str(e)[:3])
ftp.quit()
"#,
        port = relay.addr.port()
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(hex)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every file under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read_dir").flatten() {
            let path = entry.path();
            if entry.file_type().expect("type").is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("beneath");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn dir_names_never_escape_the_directory() {
    let work = tempfile::tempdir().expect("dir");
    let target = work.path().join("a").join("b").join("store");
    std::fs::create_dir_all(&target).expect("dir");
    let relay = Relay::start(&[
        "--profile",
        "devices",
        "--user",
        "cam:pw",
        "--dir",
        &target.display().to_string(),
    ]);
    let long = format!("{}.jpeg", "x".repeat(300));
    let replies = python_stor_each(
        &relay,
        "cam",
        &[
            b"/. ../. ../x.txt",
            "/\u{3000}../\u{3000}../y.txt".as_bytes(),
            b". .htaccess",
            b"caf\xe9.jpg",
            b"caf\xe8.jpg",
            long.as_bytes(),
        ],
    );
    assert!(replies.iter().all(|code| code == "226"), "{replies:?}");
    // Nothing above the directory: only `a/b/store` was ever there.
    assert_eq!(
        tree(work.path())
            .iter()
            .filter(|path| !path.starts_with("a/b/store/"))
            .count(),
        0,
        "{:?}",
        tree(work.path())
    );
    let stored = tree(&target);
    let shortened = format!("{}.jpeg", "x".repeat(250));
    let mut expected = [
        "caf%E8.jpg",
        "caf%E9.jpg",
        "htaccess",
        shortened.as_str(),
        "x.txt",
        "y.txt",
    ];
    expected.sort();
    assert_eq!(stored, expected);
    assert_eq!(std::fs::read(target.join("x.txt")).expect("x"), b"payload");
}

#[test]
fn dir_never_follows_a_planted_link() {
    let work = tempfile::tempdir().expect("dir");
    let (target, outside) = (work.path().join("store"), work.path().join("outside"));
    std::fs::create_dir_all(&target).expect("dir");
    std::fs::create_dir_all(&outside).expect("dir");
    std::os::unix::fs::symlink(&outside, target.join("NVR01")).expect("link");
    let relay = Relay::start(&[
        "--profile",
        "devices",
        "--user",
        "cam:pw",
        "--dir",
        &target.display().to_string(),
    ]);
    let replies = python_stor_each(&relay, "cam", &[b"/NVR01/snap.jpg", b"/NVR02/snap.jpg"]);
    assert_eq!(replies, ["451", "226"]);
    assert_eq!(tree(&outside), Vec::<String>::new());
    // The link is left as it was (listed as the file it is).
    assert_eq!(tree(&target), ["NVR01", "NVR02/snap.jpg"]);
    assert!(relay.spool_is_empty());
}

/// A process's resident memory, and its peak, in KiB (from /proc).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("a /proc status field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn a_burst_of_failed_logins_costs_bounded_memory() {
    let work = tempfile::tempdir().expect("dir");
    let hash = ftprelay(&["hash-password"], "s3cret\n");
    assert!(hash.status.success(), "{}", stderr(&hash));
    let hash = String::from_utf8(hash.stdout).expect("utf-8");
    let users = write(work.path(), "users", format!("alice:{hash}").as_bytes());
    let relay = Relay::start(&[
        "--users",
        &users.display().to_string(),
        "--discard",
        "--max-connections",
        "600",
    ]);
    let (idle, _) = memory_kib(relay.child.id());
    // 512 logins at once, 32 from each of 16 addresses, half of them for a
    // user that exists: every one must be refused.
    let script = format!(
        r#"
import asyncio, sys
async def attempt(n):
    stage = ["connect"]
    try:
        return await asyncio.wait_for(steps(n, stage), 100)
    except asyncio.TimeoutError:
        return "timeout-in-" + stage[0]
async def steps(n, stage):
    source = "127.0.0.%d" % (1 + n % 16)
    reader, writer = await asyncio.open_connection("127.0.0.1", {port}, local_addr=(source, 0))
    stage[0] = "greeting"
    await reader.readline()
    stage[0] = "reply"
    user = "alice" if n % 2 else "nobody%d" % n
    writer.write(("USER %s\r\nPASS wrong\r\n" % user).encode())
    await writer.drain()
    replies = []
    while True:
        line = await reader.readline()
        if not line:
            break
        code = line[:3].decode()
        if code != "331":
            replies.append(code)
            break
    writer.close()
    return replies[0] if replies else "closed"
async def main():
    codes = await asyncio.gather(*(attempt(n) for n in range(512)))
    print(" ".join(codes))
asyncio.run(main())
"#,
        port = relay.addr.port()
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    let codes = String::from_utf8_lossy(&output.stdout).into_owned();
    let codes: Vec<&str> = codes.split_whitespace().collect();
    assert_eq!(codes.len(), 512);
    let log = relay.log();
    assert!(
        codes.iter().all(|c| *c == "530" || *c == "421"),
        "{codes:?}\nthe relay's log ends: {}",
        &log[log.len().saturating_sub(4000)..]
    );
    // The lock-out stopped the burst: at most ten checks per address ran.
    let refused_at_once = codes.iter().filter(|c| **c == "421").count();
    assert!(
        refused_at_once >= 512 - 16 * 10,
        "{refused_at_once} locked out"
    );
    let (_, peak) = memory_kib(relay.child.id());
    let grown_mib = peak.saturating_sub(idle) / 1024;
    assert!(
        grown_mib <= 64,
        "RSS grew by {grown_mib} MiB over idle ({idle} KiB)"
    );
}

/// Waits (at most 10 s) until `condition` holds; `describe` says what was
/// seen instead.
#[track_caller]
fn wait_until(what: &str, mut condition: impl FnMut() -> bool, describe: impl Fn() -> String) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}: {}", describe());
}

/// A string no other test's processes carry.
fn unique_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("marker-{}-{nanos}", std::process::id())
}

/// Live processes (zombies hold nothing) with `marker` in their environment,
/// but `except`.
fn processes_marked(marker: &str, except: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == except {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|var| var.ends_with(marker.as_bytes()))
        {
            found.push(pid);
        }
    }
    found
}

/// The bytes of deleted files of `dir` that some process still holds open
/// (their disk space is not freed), from every /proc/*/fd.
fn deleted_but_open_bytes(dir: &Path) -> u64 {
    let prefix = dir.display().to_string();
    let mut bytes = 0;
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for process in processes.flatten() {
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.display().to_string();
            if target.starts_with(&prefix) && target.ends_with(" (deleted)") {
                bytes += std::fs::metadata(fd.path()).map_or(0, |m| m.len());
            }
        }
    }
    bytes
}

/// The relay's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(relay: &Relay) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", relay.child.id())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn exec_timeouts_leave_no_process_and_no_open_spool_file() {
    // Each command leaves a child holding the spool file open, and times
    // out: the relay must end the child too, and so free the file's space.
    let marker = unique_marker();
    let relay = Relay::start_with_env(
        &[
            "--user",
            "demo:demo",
            "--process-timeout",
            "1",
            "--exec",
            "sleep 300 < \"$1\" & sleep 301",
        ],
        &[("FTPRELAY_TEST_MARKER", &marker)],
    );
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", &vec![b'x'; 1 << 20]);
    let uploads: Vec<Child> = (0..10)
        .map(|i| {
            Command::new("curl")
                .args(["-sS", "--max-time", "30", "-T"])
                .arg(&file)
                .arg(relay.url("demo:demo", &format!("slow{i}.bin")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("curl")
        })
        .collect();
    for upload in uploads {
        let output = upload.wait_with_output().expect("curl");
        assert!(stderr(&output).contains("451"), "{}", stderr(&output));
    }
    let relay_pid = relay.child.id();
    wait_until(
        "no process and no open spool file left",
        || {
            processes_marked(&marker, relay_pid).is_empty()
                && deleted_but_open_bytes(relay.spool.path()) == 0
        },
        || {
            format!(
                "processes {:?}, {} bytes of deleted spool files open",
                processes_marked(&marker, relay_pid),
                deleted_but_open_bytes(relay.spool.path())
            )
        },
    );
    assert!(relay.spool_is_empty());
}

#[test]
fn exec_a_background_child_does_not_hold_up_success() {
    // The command succeeds at once; its background child keeps the output
    // pipes open for longer than the processing timeout.
    let marker = unique_marker();
    let relay = Relay::start_with_env(
        &[
            "--user",
            "demo:demo",
            "--process-timeout",
            "3",
            "--exec",
            "sleep 30 & exit 0",
        ],
        &[("FTPRELAY_TEST_MARKER", &marker)],
    );
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"x");
    let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    // And the child was ended with the command's group.
    let relay_pid = relay.child.id();
    wait_until(
        "the background child to be ended",
        || processes_marked(&marker, relay_pid).is_empty(),
        || format!("{:?}", processes_marked(&marker, relay_pid)),
    );
}

#[test]
fn exec_non_utf8_output_does_not_kill_the_command() {
    // Invalid UTF-8, then more than a pipe holds: if the relay stopped
    // reading, the command would die of SIGPIPE.
    let work = tempfile::tempdir().expect("dir");
    let done = work.path().join("done");
    let command = format!(
        "printf 'caf\\351\\n' >&2 && head -c 300000 /dev/zero | tr '\\0' x >&2 && echo ok > {}",
        done.display()
    );
    let mut relay = Relay::start(&["--user", "demo:demo", "--exec", &command]);
    let file = write(work.path(), "local", b"x");
    let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(done.exists(), "the command did not finish");
    relay.wait_for_line("caf\u{FFFD}");
}

#[test]
fn exec_output_is_bounded_in_memory_and_in_the_log() {
    let mut relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--exec",
        "head -c 100000000 /dev/zero | tr '\\0' a",
    ]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", b"x");
    let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    // 100 MB went through; the relay's memory did not grow with it.
    let peak = peak_rss_kib(&relay);
    assert!(peak < 64 * 1024, "the relay's peak RSS was {peak} KiB");
    relay.wait_for_line("not logged");
    let log = relay.log();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096 + 256, "a log line of {longest} bytes");
    assert!(log.len() < 256 * 1024, "{} bytes of log", log.len());
}

#[test]
fn the_readme_quick_start_logs_the_commands_output() {
    // The README's command, at the default log level.
    let mut relay = Relay::start(&["--user", "demo:demo", "--exec", "ls -l \"$1\""]);
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "somefile", b"hello");
    let output = curl_upload(&relay, "demo:demo", "somefile", &file);
    assert!(output.status.success(), "{}", stderr(&output));
    let line = relay.wait_for_line(".ftprelay-spool-");
    assert!(line.contains("-rw------- "), "not ls -l output: {line}");
}

#[test]
fn exec_gets_the_exact_bytes_of_a_name() {
    let work = tempfile::tempdir().expect("dir");
    let out = work.path().join("name");
    let command = format!("printf %s \"$FTPRELAY_FILE_NAME\" > {}", out.display());
    let relay = Relay::start(&["--user", "demo:demo", "--exec", &command]);
    let script = r#"
import ftplib, io, sys
ftp = ftplib.FTP(encoding="latin-1")
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
ftp.login("demo", "demo")
reply = ftp.storbinary("STOR caf\xe9.jpg", io.BytesIO(b"x"))
assert reply.startswith("226"), reply
ftp.quit()
"#;
    let output = Command::new("python3")
        .args(["-c", script, &relay.port()])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read(&out).expect("the name"), b"caf\xe9.jpg");
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

/// A python3 HTTP server that reads request bodies slowly, until a line on
/// its standard input says to read the rest at full speed; it prints
/// `PORT n` when listening and `RECEIVED got OF length` when the body
/// ended (complete, or the connection closed).
const SLOW_HTTP_SERVER: &str = r#"
import http.server, sys, threading, time
fast = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), fast.set()), daemon=True).start()
class Slow(http.server.BaseHTTPRequestHandler):
    timeout = 20
    def do_POST(self):
        length = int(self.headers["Content-Length"])
        got = 0
        while got < length:
            chunk = self.rfile.read(min(65536, length - got))
            if not chunk:
                break
            got += len(chunk)
            if not fast.is_set():
                time.sleep(0.05)
        print(f"RECEIVED {got} OF {length}", flush=True)
        if got == length:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
print(f"PORT {server.server_address[1]}", flush=True)
server.handle_request()
"#;

#[test]
fn http_a_request_given_up_on_never_completes_its_body() {
    let mut server = Command::new("python3")
        .args(["-c", SLOW_HTTP_SERVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("PORT");
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .expect("PORT n")
        .to_owned();
    let url = format!("http://127.0.0.1:{port}/hook");
    let relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--process-timeout",
        "2",
        "--http",
        &url,
    ]);
    let work = tempfile::tempdir().expect("dir");
    // Far more than socket buffers hold: the body is still being sent when
    // the relay gives up.
    let file = write(work.path(), "local", &vec![b'x'; 32 << 20]);
    let output = curl_upload(&relay, "demo:demo", "big.bin", &file);
    assert!(stderr(&output).contains("451"), "{}", stderr(&output));
    // The device was told 451: now the server reads all it can get.
    server
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"fast\n")
        .expect("fast");
    line.clear();
    out.read_line(&mut line).expect("RECEIVED");
    let counts: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{line}");
    assert!(
        counts[0] < counts[1],
        "the server got the whole body after the device was told 451: {line}"
    );
    let _ = server.wait();
}

#[test]
fn the_exec_log_limit_from_the_file_and_the_flag() {
    let work = tempfile::tempdir().expect("dir");
    let config = write(
        work.path(),
        "ftprelay.toml",
        b"exec_log_limit = 640\nexec = \"seq 1 100\"\n[[users]]\nname = \"demo\"\npassword = \"demo\"\n",
    );
    let config = config.display().to_string();
    let file = write(work.path(), "local", b"x");
    // Each line counts at least 64 bytes: 10 lines fit in 640, 16 in 1K.
    for (args, limit, lines) in [
        (vec!["--config", &config], "at most 640 bytes a run", 10),
        (
            vec!["--config", &config, "--exec-log-limit", "1K"],
            "at most 1024 bytes a run",
            16,
        ),
    ] {
        let mut relay = Relay::start(&args);
        let output = curl_upload(&relay, "demo:demo", "a.bin", &file);
        assert!(output.status.success(), "{}", stderr(&output));
        let line = relay.wait_for_line("not logged");
        assert!(line.contains(limit), "{line}");
        let log = relay.log();
        let logged = log
            .lines()
            .filter(|l| l.contains(" INFO ftprelay::exec: "))
            .count();
        assert_eq!(logged, lines, "{log}");
    }
}

/// One FTPS upload by python's ftplib, whose data connections never resume
/// the control connection's TLS session: the STOR reply it got.
fn ftplib_tls_upload(port: u16, cacert: &Path) -> String {
    let script = r#"
import ftplib, io, ssl, sys
ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=sys.argv[2]), timeout=15)
ftp.connect("127.0.0.1", int(sys.argv[1]))
ftp.login("demo", "demo")
ftp.prot_p()
try:
    data = ftp.transfercmd("STOR py.bin")
    try:
        # A refused connection may be closed before all is sent.
        data.sendall(b"python bytes")
        data.unwrap()
    except OSError:
        pass
    data.close()
    print(ftp.voidresp())
except ftplib.all_errors as refused:
    print(refused)
"#;
    let output = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(cacert)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn tls_session_reuse_required_by_flag_or_config_file() {
    let work = tempfile::tempdir().expect("dir");
    let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
    write_certificate(&cert, &key);
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let file = write(work.path(), "local", b"x");
    // Off by default: a client that does not resume uploads.
    let relay = Relay::start(&[
        "--user",
        "demo:demo",
        "--discard",
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ]);
    let reply = ftplib_tls_upload(relay.addr.port(), &cert);
    assert!(reply.starts_with("226"), "{reply}");
    drop(relay);
    let config = write(
        work.path(),
        "ftprelay.toml",
        b"tls_require_session_reuse = true\n",
    );
    let config = config.display().to_string();
    let flag = ["--tls-require-session-reuse"];
    let from_file = ["--config", config.as_str()];
    for switch in [&flag[..], &from_file[..]] {
        let mut args = vec![
            "--user",
            "demo:demo",
            "--discard",
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
        ];
        args.extend_from_slice(switch);
        let relay = Relay::start(&args);
        let reply = ftplib_tls_upload(relay.addr.port(), &cert);
        assert!(reply.starts_with("522"), "{switch:?}: {reply}");
        assert!(relay.spool_is_empty());
        // curl resumes the session on its data connections.
        let url = format!("ftp://demo:demo@127.0.0.1:{}/a.bin", relay.addr.port());
        let output = curl_ftps(&url, &cert, &file);
        assert!(output.status.success(), "{switch:?}: {}", stderr(&output));
    }
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

#[test]
fn a_minimum_upload_rate_from_flags_or_config_file() {
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
}
