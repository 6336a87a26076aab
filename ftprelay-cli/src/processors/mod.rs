//! The built-in processors: run a command, move into a directory, POST to a
//! URL, or discard. They use smol's runtime-agnostic crates (async-process,
//! blocking), so the same processors serve the tokio and the smol relay.

mod dir;
mod exec;
mod http;
mod local_name;
mod output;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ftprelay_tokio::proto::{FileProcessor, ProcessError, Upload};

/// What to do with each upload of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProcessorSpec {
    /// Run `/bin/sh -c CMD` with the spooled file as `$1`.
    Exec(String),
    /// Move the file into this directory.
    Dir(PathBuf),
    /// POST the file to this URL.
    Http(String),
    /// Log and drop the file.
    Discard,
}

impl fmt::Display for ProcessorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exec(command) => write!(f, "exec {command:?}"),
            Self::Dir(dir) => write!(f, "dir {}", dir.display()),
            Self::Http(url) => write!(f, "http {url}"),
            Self::Discard => f.write_str("discard"),
        }
    }
}

/// The bytes of a command's output logged per run, by default.
pub(crate) const DEFAULT_EXEC_LOG_LIMIT: usize = 64 * 1024;

/// The relay-wide bounds the processors work within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The relay's processing timeout: HTTP requests give up before it.
    pub(crate) process_timeout: Duration,
    /// The bytes of an `--exec` command's output logged per run.
    pub(crate) exec_log_limit: usize,
}

/// A user's processor for one session.
#[derive(Debug, Clone)]
pub(crate) struct Processor {
    spec: Arc<ProcessorSpec>,
    /// The user's own profile, if any.
    profile: Option<ftprelay_tokio::proto::Profile>,
    limits: Limits,
}

impl Processor {
    pub(crate) fn new(
        spec: Arc<ProcessorSpec>,
        limits: Limits,
        profile: Option<ftprelay_tokio::proto::Profile>,
    ) -> Self {
        Self {
            spec,
            profile,
            limits,
        }
    }
}

impl FileProcessor for Processor {
    fn profile(&self) -> Option<ftprelay_tokio::proto::Profile> {
        self.profile
    }

    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        match &*self.spec {
            ProcessorSpec::Exec(command) => {
                exec::exec(command, upload, self.limits.exec_log_limit).await
            }
            ProcessorSpec::Dir(dir) => dir::move_into(dir, upload).await,
            ProcessorSpec::Http(url) => http::post(url, upload, self.limits.process_timeout).await,
            ProcessorSpec::Discard => {
                tracing::info!(
                    name = %upload.file_name_lossy(),
                    size = upload.size(),
                    "discarded"
                );
                Ok(())
            }
        }
    }
}
