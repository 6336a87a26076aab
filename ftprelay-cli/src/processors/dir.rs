//! `--dir`: move each upload into a directory.

use std::io;
use std::path::{Path, PathBuf};

use ftprelay_tokio::proto::{ProcessError, Upload};

/// Moves the upload into `dir` under its name made safe, never overwriting:
/// `name.jpg`, then `name-1.jpg`, `name-2.jpg`, … A hard link is atomic and
/// keeps the spool file for the relay to delete; across file systems the
/// file is copied into a file created exclusively.
pub(super) async fn move_into(dir: &Path, upload: &Upload) -> Result<(), ProcessError> {
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
pub(super) fn safe_file_name(name: &[u8]) -> String {
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
