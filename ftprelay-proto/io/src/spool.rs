//! The spool: where uploads are written while they arrive and are processed.
//!
//! Every spool file is deleted when its handle is dropped, so an upload that
//! ends in any way (processed, failed, aborted, cancelled with its task)
//! leaves nothing behind. A crash can; the next start sweeps what a relay
//! left, recognised by name, and nothing else. A lock file marks a spool
//! directory as in use, so that no relay sweeps another's live uploads.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The file names of spool files start with this, so that a relay sweeping
/// its spool directory at start-up removes its own leftovers and nothing
/// else.
pub const SPOOL_FILE_PREFIX: &str = ".ftprelay-spool-";

/// Whether `name` is one of the relay's own spool files.
pub fn is_spool_file_name(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes()
        .starts_with(SPOOL_FILE_PREFIX.as_bytes())
}

use rustix::fs::{Mode, OFlags};
use std::time::{Duration, SystemTime};

use tempfile::{TempDir, TempPath};

/// Locked by the relay that uses the directory, for as long as it runs.
const LOCK_FILE: &str = ".ftprelay-spool.lock";
/// The prefix of the private spool directories made under the temp dir.
const DEFAULT_DIR_PREFIX: &str = "ftprelay-";
/// An unlocked default spool younger than this may be one just being set
/// up by another relay: it is not removed.
const SETTLING: Duration = Duration::from_secs(60);

/// The spool directory of one relay.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    /// Held for the relay's lifetime: the directory is ours.
    _lock: fs::File,
    /// Set when the relay made the directory itself: removed with the relay.
    _owned: Option<TempDir>,
}

impl Spool {
    /// Opens `dir` (created if missing, locked, then swept of the relay's
    /// own leftovers), or a fresh private directory under the system temp
    /// dir, after sweeping the ones crashed relays left there.
    pub(crate) fn open(dir: Option<&Path>) -> io::Result<Self> {
        match dir {
            Some(dir) => {
                // Made private if the relay makes it; an existing directory
                // keeps the mode its operator gave it.
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| with_path(e, "cannot create spool directory", dir))?;
                let lock = lock(dir)?;
                let swept = sweep(dir);
                if swept > 0 {
                    tracing::warn!(spool = %dir.display(), files = swept, "removed spool files left by an earlier run");
                }
                Ok(Self {
                    dir: dir.to_owned(),
                    _lock: lock,
                    _owned: None,
                })
            }
            None => {
                sweep_abandoned(&std::env::temp_dir());
                let owned = tempfile::Builder::new()
                    .prefix(DEFAULT_DIR_PREFIX)
                    .permissions(fs::Permissions::from_mode(0o700))
                    .tempdir()?;
                let lock = lock(owned.path())?;
                Ok(Self {
                    dir: owned.path().to_owned(),
                    _lock: lock,
                    _owned: Some(owned),
                })
            }
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty spool file (mode 0600, named by the relay).
    pub(crate) fn create(&self) -> io::Result<SpoolFile> {
        let file = tempfile::Builder::new()
            .prefix(SPOOL_FILE_PREFIX)
            .tempfile_in(&self.dir)?;
        let (file, path) = file.into_parts();
        Ok(SpoolFile {
            file: Some(file),
            path,
        })
    }
}

/// Takes the directory's lock, or says who has it.
fn lock(dir: &Path) -> io::Result<fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = open_lock(&path, OFlags::CREATE)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "the spool directory {} is in use by another ftprelay",
                dir.display()
            ),
        )),
        Err(fs::TryLockError::Error(e)) => Err(with_path(e, "cannot lock", &path)),
    }
}

/// Opens (with `create`, creates) the lock file at `path`: never through a
/// symbolic link (the link's target would be created, as root perhaps),
/// never blocking (a FIFO), and only if it is a regular file of one link.
fn open_lock(path: &Path, create: OFlags) -> io::Result<fs::File> {
    let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | create;
    let not_a_file = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the spool lock {} is not a regular file (a symbolic link, FIFO, device or hard link?); remove it",
                path.display()
            ),
        )
    };
    let fd = match rustix::fs::open(path, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => fd,
        // ELOOP: a symbolic link; ENXIO: a FIFO without a reader, a device.
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NXIO) => return Err(not_a_file()),
        Err(e) => {
            return Err(with_path(e.into(), "cannot create the spool lock", path));
        }
    };
    let file = fs::File::from(fd);
    let metadata = file
        .metadata()
        .map_err(|e| with_path(e, "cannot inspect the spool lock", path))?;
    if !metadata.file_type().is_file() || metadata.nlink() != 1 {
        return Err(not_a_file());
    }
    Ok(file)
}

/// Removes the relay's own spool files from `dir`; returns how many. A
/// symbolic link or other non-directory with a spool file's name is
/// unlinked too, never followed or opened; a directory, or anything named
/// otherwise, is left alone. A file that cannot be removed is reported, not
/// fatal.
fn sweep(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        // The entry's own type (lstat), not its target's.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir || !is_spool_file_name(&entry.file_name()) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(file = %entry.path().display(), %error, "cannot remove a leftover spool file");
            }
        }
    }
    removed
}

/// Clears the private spool directories of relays that are gone: under
/// `temp`, a directory named like ours, holding our lock file, which nobody
/// holds, and old enough not to be one being set up right now.
fn sweep_abandoned(temp: &Path) {
    let Ok(entries) = fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let named_like_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(DEFAULT_DIR_PREFIX));
        // A real directory (not a link to one) of this user: another
        // user's is none of this relay's business.
        let ours = entry.metadata().is_ok_and(|m| {
            m.file_type().is_dir() && m.uid() == rustix::process::geteuid().as_raw()
        });
        if !named_like_ours || !ours {
            continue;
        }
        let dir = entry.path();
        let lock_path = dir.join(LOCK_FILE);
        // Not a regular file of ours (a link, a FIFO someone planted): not
        // a relay's spool, left alone.
        let Ok(lock_file) = open_lock(&lock_path, OFlags::empty()) else {
            continue;
        };
        let settled = lock_file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > SETTLING);
        if !settled || lock_file.try_lock().is_err() {
            continue;
        }
        let swept = sweep(&dir);
        let _ = fs::remove_file(&lock_path);
        let _ = fs::remove_dir(&dir);
        tracing::warn!(spool = %dir.display(), files = swept, "removed the spool of a relay that is gone");
    }
}

fn with_path(error: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

/// One spool file. Dropping it deletes the file.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    file: Option<fs::File>,
    path: TempPath,
}

impl SpoolFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for writing; `None` once taken.
    pub(crate) fn take_file(&mut self) -> Option<fs::File> {
        self.file.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(old))
            .expect("age the lock file");
    }

    #[test]
    fn abandoned_spools_are_cleared_and_nothing_else() {
        let temp = tempfile::tempdir().expect("temp");
        // A crashed relay's spool: unlocked, old.
        let crashed = temp.path().join("ftprelay-crashed");
        fs::create_dir(&crashed).expect("dir");
        fs::write(crashed.join(LOCK_FILE), b"").expect("lock file");
        fs::write(crashed.join(format!("{SPOOL_FILE_PREFIX}x")), b"upload").expect("spool file");
        age(&crashed.join(LOCK_FILE));
        // A live relay's spool: locked.
        let live = temp.path().join("ftprelay-live");
        fs::create_dir(&live).expect("dir");
        let held = lock(&live).expect("lock");
        age(&live.join(LOCK_FILE));
        fs::write(live.join(format!("{SPOOL_FILE_PREFIX}y")), b"in flight").expect("spool file");
        // Not ours: no lock file.
        let foreign = temp.path().join("ftprelay-something-else");
        fs::create_dir(&foreign).expect("dir");
        fs::write(foreign.join(format!("{SPOOL_FILE_PREFIX}z")), b"not ours").expect("file");

        sweep_abandoned(temp.path());

        assert!(
            !crashed.exists(),
            "the crashed relay's spool is still there"
        );
        assert!(
            live.join(format!("{SPOOL_FILE_PREFIX}y")).exists(),
            "a live upload was removed"
        );
        assert!(
            foreign.join(format!("{SPOOL_FILE_PREFIX}z")).exists(),
            "a foreign file was removed"
        );
        drop(held);
    }

    #[test]
    fn a_locked_spool_cannot_be_opened_twice() {
        let dir = tempfile::tempdir().expect("dir");
        let first = Spool::open(Some(dir.path())).expect("first");
        let second = Spool::open(Some(dir.path())).expect_err("second");
        assert_eq!(second.kind(), io::ErrorKind::ResourceBusy);
        drop(first);
        Spool::open(Some(dir.path())).expect("free again");
    }

    #[test]
    fn spool_names_are_recognised() {
        assert!(is_spool_file_name(std::ffi::OsStr::new(
            ".ftprelay-spool-abc123"
        )));
        assert!(!is_spool_file_name(std::ffi::OsStr::new("scan.pdf")));
    }
}
