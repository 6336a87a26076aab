//! `--dir`: move each upload into a directory, beneath it and nowhere
//! else.
//!
//! The folders of a devices-profile upload are created beneath the
//! directory one at a time, each opened relative to its parent without
//! following a symbolic link (`openat` with `O_NOFOLLOW`): a link planted
//! inside the directory, to `/etc` say, is refused, never followed. The
//! directory itself is the operator's and may be a link.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use ftprelay_tokio::proto::{ProcessError, Upload};
use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use rustix::io::Errno;

use super::local_name::LocalName;

/// Names tried in sequence: `name.jpg`, `name-1.jpg` … `name-9.jpg`.
const SEQUENTIAL_NAMES: u32 = 10;
/// Then names with a suffix no other upload has (the time and a counter):
/// a camera that uploads `snapshot.jpg` forever costs a bounded number of
/// file-system calls per upload, never a failure.
const UNIQUE_NAMES: u32 = 8;

/// Moves the upload into `dir` under its name spelled for this machine,
/// never overwriting: `name.jpg`, then `name-1.jpg` … `name-9.jpg`, then a
/// unique `name-<time>-<n>.jpg`. A hard
/// link is atomic and keeps the spool file for the relay to delete; across
/// file systems the file is copied into a file created exclusively.
pub(super) async fn move_into(dir: &Path, upload: &Upload) -> Result<(), ProcessError> {
    // The virtual folders (devices profile) become folders here:
    // `/NVR01/ch1/x.jpg` goes to `DIR/NVR01/ch1/`.
    let folders: Vec<String> = upload
        .folders()
        .map(|folder| LocalName::new(folder).spelled(""))
        .collect();
    let name = LocalName::new(upload.file_name());
    let (dir, source) = (dir.to_owned(), upload.path().to_owned());
    match smol::unblock(move || place(&dir, &folders, &source, &name)).await {
        Ok(target) => {
            tracing::info!(target = %target.display(), "stored");
            Ok(())
        }
        Err(e) => Err(ProcessError::transient(format!("storing the file: {e}"))),
    }
}

/// Links (or copies) `source` into `base/folders…/` under the first free
/// spelling of `name`; returns the path it got.
fn place(base: &Path, folders: &[String], source: &Path, name: &LocalName) -> io::Result<PathBuf> {
    let dir = open_beneath(base, folders)?;
    let mut shown = base.to_owned();
    shown.extend(folders);
    for attempt in 0..SEQUENTIAL_NAMES + UNIQUE_NAMES {
        let suffix = match attempt {
            0 => String::new(),
            n if n < SEQUENTIAL_NAMES => format!("-{n}"),
            _ => unique_suffix(),
        };
        let candidate = name.spelled(&suffix);
        match link_or_copy(&dir, source, &candidate) {
            Ok(()) => return Ok(shown.join(candidate)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free name for {} in {}",
            name.spelled(""),
            shown.display()
        ),
    ))
}

/// `-<nanoseconds since 1970, hex>-<a counter of this process>`.
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("-{nanos:x}-{n}")
}

/// `base/folders…`, each folder created if missing and opened without
/// following a symbolic link.
fn open_beneath(base: &Path, folders: &[String]) -> io::Result<OwnedFd> {
    // The operator's directory is made if missing, as `mkdir -p` would.
    std::fs::create_dir_all(base)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", base.display())))?;
    let directory = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(base, directory, Mode::empty())
        .map_err(|e| with_path(e, base.to_owned()))?;
    let mut at = base.to_owned();
    for folder in folders {
        at.push(folder);
        let beneath = directory | OFlags::NOFOLLOW;
        dir = match rustix::fs::openat(&dir, folder, beneath, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&dir, folder, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(with_path(e, at)),
                }
                rustix::fs::openat(&dir, folder, beneath, Mode::empty())
                    .map_err(|e| with_path(e, at.clone()))?
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(io::Error::other(format!(
                    "{} is not a folder (a symbolic link is never followed)",
                    at.display()
                )));
            }
            Err(e) => return Err(with_path(e, at)),
        };
    }
    Ok(dir)
}

/// A hard link to `source` named `name` in `dir`, else an exclusive copy.
fn link_or_copy(dir: &OwnedFd, source: &Path, name: &str) -> io::Result<()> {
    match rustix::fs::linkat(CWD, source, dir, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
        // Another file system (EXDEV), or one without hard links.
        Err(_) => copy_exclusive(dir, source, name),
    }
}

fn copy_exclusive(dir: &OwnedFd, source: &Path, name: &str) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let created = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => fd,
        Err(Errno::EXIST) => return Err(io::ErrorKind::AlreadyExists.into()),
        Err(e) => return Err(e.into()),
    };
    let mut output = std::fs::File::from(created);
    let copied =
        std::fs::File::open(source).and_then(|mut input| io::copy(&mut input, &mut output));
    if let Err(e) = copied
        .and_then(|_| output.flush())
        .and_then(|()| output.sync_all())
    {
        let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        return Err(e);
    }
    Ok(())
}

fn with_path(errno: Errno, path: PathBuf) -> io::Error {
    let error = io::Error::from(errno);
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool_file(dir: &tempfile::TempDir) -> PathBuf {
        let source = dir.path().join("upload");
        std::fs::write(&source, b"one").expect("write");
        source
    }

    #[test]
    fn placing_never_overwrites() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let name = LocalName::new(b"scan.pdf");
        let first = place(target.path(), &[], &source, &name).expect("place");
        let second = place(target.path(), &[], &source, &name).expect("place");
        assert_eq!(first, target.path().join("scan.pdf"));
        assert_eq!(second, target.path().join("scan-1.pdf"));
    }

    #[test]
    fn a_name_taken_many_times_over_costs_a_bounded_number_of_tries() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        std::fs::write(target.path().join("snapshot.jpg"), b"old").expect("write");
        for n in 1..=12_000 {
            let taken = target.path().join(format!("snapshot-{n}.jpg"));
            std::fs::write(taken, b"old").expect("write");
        }
        let name = LocalName::new(b"snapshot.jpg");
        let first = place(target.path(), &[], &source, &name).expect("a free name");
        let second = place(target.path(), &[], &source, &name).expect("a free name");
        assert_ne!(first, second);
        for placed in [&first, &second] {
            assert_eq!(std::fs::read(placed).expect("read"), b"one");
            let file_name = placed.file_name().and_then(|n| n.to_str()).expect("utf-8");
            assert!(file_name.starts_with("snapshot-") && file_name.ends_with(".jpg"));
        }
    }

    #[test]
    fn folders_are_made_beneath_and_links_never_followed() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let outside = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let name = LocalName::new(b"x.jpg");
        let folders = ["NVR01".to_owned(), "ch1".to_owned()];
        let placed = place(target.path(), &folders, &source, &name).expect("place");
        assert_eq!(placed, target.path().join("NVR01/ch1/x.jpg"));
        std::os::unix::fs::symlink(outside.path(), target.path().join("planted")).expect("link");
        let error = place(target.path(), &["planted".to_owned()], &source, &name)
            .expect_err("a planted link is refused");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_dir(outside.path()).expect("dir").count(), 0);
    }

    #[test]
    fn a_link_at_the_file_name_is_never_written_through() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let outside = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        std::os::unix::fs::symlink(&victim, target.path().join("x.jpg")).expect("link");
        let placed = place(target.path(), &[], &source, &LocalName::new(b"x.jpg")).expect("place");
        assert_eq!(placed, target.path().join("x-1.jpg"));
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
    }
}
