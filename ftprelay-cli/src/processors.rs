//! The built-in processors: run a command, move into a directory, POST to a
//! URL, or discard. They use smol's runtime-agnostic crates (async-process,
//! blocking), so the same processors serve the tokio and the smol relay.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ftprelay_tokio::proto::{FileProcessor, ProcessError, Upload};
use smol::future::zip;
use smol::io::{AsyncBufReadExt, AsyncRead, BufReader};
use smol::stream::StreamExt as _;

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

/// A user's processor for one session.
#[derive(Debug, Clone)]
pub(crate) struct Processor {
    spec: Arc<ProcessorSpec>,
    /// The user's own profile, if any.
    profile: Option<ftprelay_tokio::proto::Profile>,
    /// The relay's processing timeout: HTTP requests give up a little before
    /// it, since a blocking request cannot be cancelled.
    timeout: Duration,
}

impl Processor {
    pub(crate) fn new(
        spec: Arc<ProcessorSpec>,
        timeout: Duration,
        profile: Option<ftprelay_tokio::proto::Profile>,
    ) -> Self {
        Self {
            spec,
            profile,
            timeout,
        }
    }
}

impl FileProcessor for Processor {
    fn profile(&self) -> Option<ftprelay_tokio::proto::Profile> {
        self.profile
    }

    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        match &*self.spec {
            ProcessorSpec::Exec(command) => exec(command, upload).await,
            ProcessorSpec::Dir(dir) => move_into(dir, upload).await,
            ProcessorSpec::Http(url) => post(url, upload, self.timeout).await,
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

/// `/bin/sh -c CMD ftprelay PATH`, with the upload described in the
/// environment. Killed if the relay gives up on it (the task is dropped).
/// async-process, not tokio's: it runs under either runtime.
async fn exec(command: &str, upload: &Upload) -> Result<(), ProcessError> {
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

/// Moves the upload into `dir` under its name made safe, never overwriting:
/// `name.jpg`, then `name-1.jpg`, `name-2.jpg`, … A hard link is atomic and
/// keeps the spool file for the relay to delete; across file systems the
/// file is copied into a file created exclusively.
async fn move_into(dir: &Path, upload: &Upload) -> Result<(), ProcessError> {
    // The virtual folders (devices profile) become folders here, each made
    // safe like a file name: `/NVR01/ch1/x.jpg` goes to `DIR/NVR01/ch1/`.
    let mut dir = dir.to_owned();
    let remote = upload.remote_path();
    let folders = remote.split(|b| *b == b'/').filter(|part| !part.is_empty());
    let folder_count = folders.clone().count().saturating_sub(1);
    for folder in folders.take(folder_count) {
        dir.push(safe_file_name(folder));
    }
    let source = upload.path().to_owned();
    let name = safe_file_name(upload.file_name());
    match smol::unblock(move || place(&dir, &source, &name)).await {
        Ok(target) => {
            tracing::info!(target = %target.display(), "stored");
            Ok(())
        }
        Err(e) => Err(ProcessError::transient(format!("moving the file: {e}"))),
    }
}

fn place(dir: &Path, source: &Path, name: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    for attempt in 0..10_000u32 {
        let candidate = if attempt == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{attempt}{extension}"))
        };
        match std::fs::hard_link(source, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            // Another file system (EXDEV), or one without hard links.
            Err(_) => match copy_exclusive(source, &candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            },
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name for {name} in {}", dir.display()),
    ))
}

fn copy_exclusive(source: &Path, target: &Path) -> io::Result<()> {
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)?;
    let copied =
        std::fs::File::open(source).and_then(|mut input| io::copy(&mut input, &mut output));
    if let Err(e) = copied.and_then(|_| output.sync_all()) {
        let _ = std::fs::remove_file(target);
        return Err(e);
    }
    Ok(())
}

/// The client's file name, safe as one file name here: no separators or
/// control characters, no leading dots, never empty.
pub(crate) fn safe_file_name(name: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(name);
    let cleaned: String = lossy
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "upload".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// POSTs the file as the request body; a 2xx answer is success.
async fn post(url: &str, upload: &Upload, timeout: Duration) -> Result<(), ProcessError> {
    let url = url.to_owned();
    let path = upload.path().to_owned();
    let headers = [
        ("X-Ftprelay-File-Name", header_value(upload.file_name())),
        ("X-Ftprelay-User", header_value(upload.user())),
        ("X-Ftprelay-Size", upload.size().to_string()),
        ("Content-Length", upload.size().to_string()),
        ("Content-Type", "application/octet-stream".to_owned()),
    ];
    // Give up before the relay does: a blocking request cannot be cancelled.
    let request_timeout = timeout
        .saturating_sub(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    let sent = smol::unblock(move || {
        let file = std::fs::File::open(&path)?;
        let mut request = ureq::post(&url).timeout(request_timeout);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        request.send(file).map_err(io::Error::other)
    })
    .await;
    match sent {
        Ok(response) if (200..300).contains(&response.status()) => Ok(()),
        Ok(response) => Err(ProcessError::transient(format!(
            "the server answered {}",
            response.status()
        ))),
        Err(e) => Err(ProcessError::transient(format!("posting the file: {e}"))),
    }
}

/// Client bytes as an HTTP header value: printable ASCII as is, anything
/// else percent-encoded.
fn header_value(bytes: &[u8]) -> String {
    let mut value = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            value.push(b as char);
        } else {
            value.push_str(&format!("%{b:02X}"));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert_eq!(safe_file_name(b"scan.pdf"), "scan.pdf");
        assert_eq!(safe_file_name(b"..\\..\\evil"), "_.._evil");
        assert_eq!(safe_file_name(b".hidden"), "hidden");
        assert_eq!(safe_file_name(b"..."), "upload");
        assert_eq!(safe_file_name(b"a\r\nb"), "a__b");
        assert_eq!(safe_file_name(b"\xC4\xE3.jpg"), "\u{FFFD}\u{FFFD}.jpg");
    }

    #[test]
    fn header_values() {
        assert_eq!(header_value(b"scan 1.pdf"), "scan 1.pdf");
        assert_eq!(header_value(b"a\r\nb%"), "a%0D%0Ab%25");
        assert_eq!(header_value(b"\xC4"), "%C4");
    }

    #[test]
    fn placing_never_overwrites() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool.path().join("upload");
        std::fs::write(&source, b"one").expect("write");
        let first = place(target.path(), &source, "scan.pdf").expect("place");
        let second = place(target.path(), &source, "scan.pdf").expect("place");
        assert_eq!(first.file_name().and_then(|n| n.to_str()), Some("scan.pdf"));
        assert_eq!(
            second.file_name().and_then(|n| n.to_str()),
            Some("scan-1.pdf")
        );
    }
}
