//! The harness of the CLI tests: the `ftprelay` binary started as a user
//! starts it (a separate process, its log collected), and the clients that
//! talk to it.
//!
//! A test that starts a relay is written in [`on_every_runtime!`] (run with
//! the relay on tokio, and again on smol) or, if its subject does not
//! depend on the runtime, in [`on_tokio_only!`]; [`Relay::start`] fails a
//! test written outside both. Tests that start no relay (bad input) are
//! plain `#[test]` functions.

#![allow(dead_code, unreachable_pub)]

pub mod hook;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_ftprelay");

thread_local! {
    /// The `--runtime` the relays of this test run on, set by the macro the
    /// test is written in; unset, [`Relay::start`] refuses to start one.
    static RUNTIME: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Runs `test` with the relays it starts on `runtime`.
pub fn on_runtime(runtime: &'static str, test: impl FnOnce()) {
    /// Unsets the runtime when the test ends, even by a panic: a test run
    /// next on this thread chooses its own.
    struct Unset;
    impl Drop for Unset {
        fn drop(&mut self) {
            RUNTIME.with(|chosen| chosen.set(None));
        }
    }
    RUNTIME.with(|chosen| chosen.set(Some(runtime)));
    let _unset = Unset;
    test();
}

/// The runtime chosen for this test's relays.
fn runtime() -> &'static str {
    RUNTIME.with(|chosen| chosen.get()).expect(
        "this test starts a relay without a runtime: write it in \
         support::on_every_runtime! (or on_tokio_only!)",
    )
}

/// A running `ftprelay`, its log collected as it is written.
pub struct Relay {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    pub lines: mpsc::Receiver<String>,
    pub spool: tempfile::TempDir,
}

impl Relay {
    /// Starts `ftprelay ARGS --listen 127.0.0.1:0 --spool-dir TMP` and waits
    /// for its "listening" line.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`Relay::start`] with `env` added to the relay's environment (which
    /// its `--exec` commands inherit).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let spool = tempfile::tempdir().expect("spool");
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .args(["--runtime", runtime()])
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
        // `listen=ADDR` in text, `"listen":"ADDR"` with --log-format json.
        let addr = listening
            .split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .or_else(|| {
                let rest = listening.split("\"listen\":\"").nth(1)?;
                rest.split('"').next()
            })
            .expect("the address in the listening line");
        relay.addr = addr.parse().expect("the listening address");
        relay
    }

    /// The relay's peak resident memory (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmHWM")
    }

    /// Waits (at most 20 s in all, however chatty the log) for a log line
    /// containing `needle`.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}; log:\n{}", self.log()),
            }
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("lock").clone()
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    pub fn url(&self, user: &str, name: &str) -> String {
        format!("ftp://{user}@127.0.0.1:{}/{name}", self.addr.port())
    }

    /// No file in the spool but its lock file.
    pub fn spool_is_empty(&self) -> bool {
        std::fs::read_dir(self.spool.path())
            .expect("spool")
            .all(|e| e.expect("entry").file_name() == ".ftprelay-spool.lock")
    }

    /// SIGTERM, then the exit status (at most 30 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        self.wait()
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
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

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// A child process killed (and reaped) when dropped, a failing test too.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn curl_upload(relay: &Relay, user: &str, name: &str, file: &Path) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "-T"])
        .arg(file)
        .arg(relay.url(user, name))
        .output()
        .expect("curl")
}

/// [`curl_upload`] with the relay's replies on standard error (`< 552 …`):
/// curl says a 550 or a 552 in its own words only.
pub fn curl_verbose(relay: &Relay, user: &str, name: &str, file: &Path) -> Output {
    Command::new("curl")
        .args(["-sS", "-v", "--max-time", "30", "-T"])
        .arg(file)
        .arg(relay.url(user, name))
        .output()
        .expect("curl")
}

/// `curl -T` of `bytes` as `name`, from a file of its own.
pub fn upload(relay: &Relay, user: &str, name: &str, bytes: &[u8]) -> Output {
    let work = tempfile::tempdir().expect("dir");
    let file = write(work.path(), "local", bytes);
    curl_upload(relay, user, name, &file)
}

/// `curl -T FILE --ftp-create-dirs URL`.
pub fn curl_creating_dirs(file: &Path, url: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--ftp-create-dirs", "-T"])
        .arg(file)
        .arg(url)
        .output()
        .expect("curl")
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// Runs the binary to completion with `stdin`; returns its output.
pub fn ftprelay(args: &[&str], stdin: &str) -> Output {
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

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error contract: one line on standard error, the status, no panic.
#[track_caller]
pub fn assert_fails(output: &Output, code: i32, mentions: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{text}");
    assert_eq!(text.lines().count(), 1, "one line expected: {text}");
    assert!(text.starts_with("ftprelay: "), "{text}");
    assert!(text.contains(mentions), "{mentions:?} not in {text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// The tests of one file that start relays, each written once and run
/// twice: as `name` with the relays on tokio, as `on_smol::name` on smol.
///
/// ```ignore
/// support::on_every_runtime!(
///     exec_failure_is_451({
///         let relay = Relay::start(&["--user", "demo:demo", "--exec", "exit 3"]);
///         // ...
///     }),
/// );
/// ```
///
/// The call syntax (a name, then its body as a block) is deliberate:
/// rustfmt formats it, as it would not a list of `fn` items. Comments go in
/// `//`. One invocation per file (it defines the modules `every_runtime`
/// and `on_smol`). A test written outside this macro and
/// [`on_tokio_only!`] that starts a relay fails: its runtime was not chosen.
#[allow(unused_macros)] // each test binary uses what it needs
macro_rules! on_every_runtime {
    ($($name:ident($body:block)),* $(,)?) => {
        /// The bodies of the tests, run by the tests below on each runtime.
        mod every_runtime {
            use super::*;
            $(pub(super) fn $name() $body)*
        }
        $(
            #[test]
            fn $name() {
                $crate::support::on_runtime("tokio", every_runtime::$name);
            }
        )*
        mod on_smol {
            $(
                #[test]
                fn $name() {
                    $crate::support::on_runtime("smol", super::every_runtime::$name);
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_every_runtime;

/// Tests that start relays but whose subject does not depend on the runtime
/// (what the `--exec` command gets and logs): one run, the relays on tokio.
/// Written as in [`on_every_runtime!`].
#[allow(unused_macros)] // each test binary uses what it needs
macro_rules! on_tokio_only {
    ($($name:ident($body:block)),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::support::on_runtime("tokio", || $body);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use on_tokio_only;

/// Waits (at most 10 s) until `condition` holds; `describe` says what was
/// seen instead.
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool, describe: impl Fn() -> String) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}: {}", describe());
}

/// A Python server of the tests (`python3 SCRIPT ARGS`) that prints `PORT
/// n` once listening, then one JSON report a line: killed when dropped.
pub struct ReportingServer {
    _server: KillOnDrop,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Its reports, as they come.
    pub reports: mpsc::Receiver<serde_json::Value>,
}

impl ReportingServer {
    pub fn start(script: &str, args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().expect("stdout");
        let server = KillOnDrop(child);
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("the PORT line").expect("read");
        let port = first
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok())
            .expect("PORT n");
        let (sender, reports) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let report = serde_json::from_str(&line).expect("a JSON report");
                if sender.send(report).is_err() {
                    break;
                }
            }
        });
        Self {
            _server: server,
            port,
            reports,
        }
    }

    /// The next report, within `wait`; `what` names it in the failure.
    pub fn next_within(&self, wait: Duration, what: &str) -> serde_json::Value {
        self.reports
            .recv_timeout(wait)
            .unwrap_or_else(|_| panic!("no {what} within {wait:?}"))
    }
}
