//! `--exec`: run a shell command on each upload.
//!
//! The command runs in a process group of its own, and the whole group is
//! killed when the run ends in any way: the command exited (its background
//! children with it), the relay gave up on it (the processing timeout), or
//! the session went away. A child left behind would keep the spool file
//! open, and its disk space with it, for as long as it lives.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use smol::future::{FutureExt as _, zip};

use crate::output::{Budget, Stream, log_lines};
use ftprelay_proto::{ProcessError, Upload};

use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;

/// After the command exited (and its group was killed), how long what is
/// still in its pipes is read. Only a process that left the group (setsid)
/// can hold a pipe open past the kill; its output is not waited for.
const DRAIN: Duration = Duration::from_secs(1);

/// The bytes of a command's output logged per run, by default.
pub const DEFAULT_LOG_LIMIT: usize = 64 * 1024;

/// `--exec`: runs `/bin/sh -c CMD ftprelay PATH` on each upload; exit
/// status 0 is success. The upload is described in the environment
/// (`FTPRELAY_PATH`, `FTPRELAY_FILE_NAME`, `FTPRELAY_REMOTE_PATH`,
/// `FTPRELAY_USER`, `FTPRELAY_PEER`, `FTPRELAY_SIZE`, `FTPRELAY_ID`).
#[derive(Debug, Clone)]
pub struct Command {
    command: String,
    log_limit: usize,
}

impl Command {
    /// Runs `command`, logging at most [`DEFAULT_LOG_LIMIT`] bytes of its
    /// output a run.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            log_limit: DEFAULT_LOG_LIMIT,
        }
    }

    /// Logs at most `bytes` of the command's output a run; the rest is
    /// read, counted and dropped.
    pub fn log_limit(mut self, bytes: usize) -> Self {
        self.log_limit = bytes;
        self
    }
}

impl Destination for Command {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        Box::pin(exec(&self.command, upload, fields, self.log_limit))
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exec {:?}", self.command)
    }
}

/// The variables that describe an upload to its command. Every other
/// `FTPRELAY_*` variable of the relay's own environment (its settings,
/// which may hold secrets) is removed from the command's, so that the
/// two never shadow each other.
pub const UPLOAD_VARIABLES: [&str; 7] = [
    "FTPRELAY_PATH",
    "FTPRELAY_FILE_NAME",
    "FTPRELAY_REMOTE_PATH",
    "FTPRELAY_USER",
    "FTPRELAY_PEER",
    "FTPRELAY_SIZE",
    "FTPRELAY_ID",
];

/// `/bin/sh -c CMD ftprelay PATH`, with the upload described in the
/// environment; success is the command's exit status 0, whatever its
/// children do. At most `log_limit` bytes of its output are logged.
/// async-process, not tokio's: it runs under either runtime.
async fn exec(
    command: &str,
    upload: &Upload,
    fields: &Fields,
    log_limit: usize,
) -> Result<(), ProcessError> {
    let mut std_command = std::process::Command::new("/bin/sh");
    for (name, _) in std::env::vars_os() {
        if name.as_bytes().starts_with(b"FTPRELAY_") {
            std_command.env_remove(name);
        }
    }
    // What systemd gave the relay is the relay's: a command could
    // otherwise speak for the service.
    for name in [
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
    ] {
        std_command.env_remove(name);
    }
    std_command
        .arg("-c")
        .arg(command)
        .arg("ftprelay")
        .arg(upload.path())
        .env("FTPRELAY_PATH", upload.path())
        // The client's bytes exactly, valid UTF-8 or not.
        .env("FTPRELAY_FILE_NAME", OsStr::from_bytes(upload.file_name()))
        .env(
            "FTPRELAY_REMOTE_PATH",
            OsStr::from_bytes(upload.remote_path()),
        )
        .env("FTPRELAY_USER", OsStr::from_bytes(upload.user()))
        .env("FTPRELAY_PEER", upload.peer().to_string())
        .env("FTPRELAY_SIZE", upload.size().to_string())
        .env("FTPRELAY_ID", fields.id())
        // Its own group, led by the shell: everything it starts can be
        // killed at once.
        .process_group(0);
    // A NUL in a name fails here (an environment value cannot hold one):
    // an error, not a panic.
    // The pipes are set here: async-process sets what it was not told.
    let mut child = smol::process::Command::from(std_command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProcessError::transient(format!("cannot run /bin/sh: {e}")))?;
    // Declared after the child, so dropped before it: on cancellation the
    // group is killed, then the shell is reaped.
    let mut group = Group::of(child.id());
    let budget = Budget::new(log_limit);
    let reading = zip(
        log_lines(child.stdout.take(), Stream::Stdout, &budget),
        log_lines(child.stderr.take(), Stream::Stderr, &budget),
    );
    let mut reading = std::pin::pin!(reading);
    // The exit status decides; the pipes' end does not (a background child
    // may hold them open for as long as it likes).
    let exited = async { Some(child.status().await) };
    let first = exited
        .or(async {
            (&mut reading).await;
            None
        })
        .await;
    let status = match first {
        Some(status) => {
            group.kill();
            // What is in the pipes stays readable after its writers died.
            let _ = (&mut reading)
                .or(async {
                    smol::Timer::after(DRAIN).await;
                    tracing::debug!(target: "ftprelay::exec", "output still open after the command exited; no longer read");
                    ((), ())
                })
                .await;
            status
        }
        None => {
            let status = child.status().await;
            group.kill();
            status
        }
    };
    let dropped = budget.dropped();
    if dropped > 0 {
        tracing::warn!(target: "ftprelay::exec", "{dropped} bytes of the command's output not logged (at most {log_limit} bytes a run, {} a line)", crate::output::MAX_LINE);
    }
    let status =
        status.map_err(|e| ProcessError::transient(format!("waiting for the command: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ProcessError::transient(format!(
            "the command failed: {status}"
        )))
    }
}

/// The command's process group; dropping it kills the group.
#[derive(Debug)]
struct Group(Option<Pid>);

impl Group {
    fn of(leader: u32) -> Self {
        Self(i32::try_from(leader).ok().and_then(Pid::from_raw))
    }

    /// SIGKILL to every process still in the group. Once the shell has been
    /// reaped, its id stays the group's while any member lives; with none
    /// left, the kill finds no group (ESRCH, ignored). Processes that made
    /// a session or group of their own (daemons) are not in it: they are
    /// the command's business.
    fn kill(&mut self) {
        // Once only: a second kill, later, could find the id reused.
        if let Some(group) = self.0.take() {
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}
