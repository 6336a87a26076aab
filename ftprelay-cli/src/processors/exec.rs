//! `--exec`: run a shell command on each upload.

use smol::future::zip;
use smol::io::{AsyncBufReadExt, AsyncRead, BufReader};
use smol::stream::StreamExt as _;
use std::process::Stdio;

use ftprelay_tokio::proto::{ProcessError, Upload};

/// `/bin/sh -c CMD ftprelay PATH`, with the upload described in the
/// environment. Killed if the relay gives up on it (the task is dropped).
/// async-process, not tokio's: it runs under either runtime.
pub(super) async fn exec(command: &str, upload: &Upload) -> Result<(), ProcessError> {
    let mut child = smol::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .arg("ftprelay")
        .arg(upload.path())
        .env("FTPRELAY_PATH", upload.path())
        .env("FTPRELAY_FILE_NAME", &*upload.file_name_lossy())
        .env(
            "FTPRELAY_REMOTE_PATH",
            String::from_utf8_lossy(upload.remote_path()).as_ref(),
        )
        .env(
            "FTPRELAY_USER",
            String::from_utf8_lossy(upload.user()).as_ref(),
        )
        .env("FTPRELAY_PEER", upload.peer().to_string())
        .env("FTPRELAY_SIZE", upload.size().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProcessError::transient(format!("cannot run /bin/sh: {e}")))?;
    let output = zip(
        log_lines(child.stdout.take(), false),
        log_lines(child.stderr.take(), true),
    );
    let (status, _) = zip(child.status(), output).await;
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

/// Logs what a command prints: standard error at warn, standard output at
/// debug.
async fn log_lines(stream: Option<impl AsyncRead + Unpin>, is_stderr: bool) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).lines();
    while let Some(Ok(line)) = lines.next().await {
        if is_stderr {
            tracing::warn!(target: "ftprelay::exec", "{line}");
        } else {
            tracing::debug!(target: "ftprelay::exec", "{line}");
        }
    }
}
