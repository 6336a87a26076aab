//! The harness of the CLI tests: the `ftprelay` binary started as a user
//! starts it (a separate process, its log collected), and the clients that
//! talk to it.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_ftprelay");

thread_local! {
    /// The `--runtime` the relays of this test run on.
    pub static RUNTIME: std::cell::Cell<&'static str> = const { std::cell::Cell::new("tokio") };
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
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
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

pub fn curl_upload(relay: &Relay, user: &str, name: &str, file: &Path) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "-T"])
        .arg(file)
        .arg(relay.url(user, name))
        .output()
        .expect("curl")
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

/// Each named test again, with the relay on smol.
macro_rules! on_smol_too {
    ($($name:ident),* $(,)?) => {
        mod on_smol {
            $(
                #[test]
                fn $name() {
                    $crate::support::RUNTIME.with(|runtime| runtime.set("smol"));
                    super::$name();
                }
            )*
        }
    };
}
pub(crate) use on_smol_too;
