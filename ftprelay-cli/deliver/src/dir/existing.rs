//! Whether the file already at a taken name is the one being stored: a
//! delivery repeated (a queue retrying it after a crash, a device sending
//! the same file again) finds its own bytes there, and counts as done
//! instead of storing a second copy.
//!
//! The name is looked at with the care of the rest of `--dir`: a symbolic
//! link is never followed (it is "another file"), and only a regular file
//! is opened, without blocking (a FIFO or a device planted at the name is
//! never read).

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt as _;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::cancel::Cancelled;

/// The bytes compared at a time, of each file: what the comparison holds,
/// whatever the files' size.
const STEP: usize = 64 * 1024;

/// Whether `name` in `dir` is a regular file holding exactly the bytes of
/// `ours`. Anything that cannot be read and compared (gone meanwhile, not
/// readable, not a regular file) is not ours.
pub(super) fn holds_our_bytes(
    dir: &OwnedFd,
    name: &str,
    ours: &File,
    cancelled: &Cancelled,
) -> io::Result<bool> {
    let Some(theirs) = open_regular(dir, name) else {
        return Ok(false);
    };
    let (theirs_len, ours_len) = (theirs.metadata()?.len(), ours.metadata()?.len());
    if theirs_len != ours_len {
        return Ok(false);
    }
    same_bytes(&theirs, ours, ours_len, cancelled)
}

/// `name`, opened for reading if it is a regular file (checked before it
/// is opened, and again on what was opened: it may have been replaced in
/// between); `None` otherwise.
fn open_regular(dir: &OwnedFd, name: &str) -> Option<File> {
    let before = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    if FileType::from_raw_mode(before.st_mode) != FileType::RegularFile {
        return None;
    }
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).ok()?;
    let opened = rustix::fs::fstat(&fd).ok()?;
    let same_inode = (opened.st_dev, opened.st_ino) == (before.st_dev, before.st_ino);
    (same_inode && FileType::from_raw_mode(opened.st_mode) == FileType::RegularFile)
        .then(|| File::from(fd))
}

/// Whether the first `len` bytes of `a` and `b` are the same, read
/// [`STEP`] at a time; a file shorter than `len` (truncated meanwhile) is
/// not the same.
fn same_bytes(a: &File, b: &File, len: u64, cancelled: &Cancelled) -> io::Result<bool> {
    let mut left_buffer = vec![0; STEP];
    let mut right_buffer = vec![0; STEP];
    let mut at = 0u64;
    while at < len {
        cancelled.check()?;
        let n = usize::try_from(len - at).map_or(STEP, |left| left.min(STEP));
        let (left, right) = (&mut left_buffer[..n], &mut right_buffer[..n]);
        if a.read_exact_at(left, at).is_err() || b.read_exact_at(right, at).is_err() {
            return Ok(false);
        }
        if left != right {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_fd(path: &std::path::Path) -> OwnedFd {
        rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open")
    }

    fn check(dir: &tempfile::TempDir, name: &str, ours: &[u8]) -> bool {
        let ours_path = dir.path().join(".ours");
        std::fs::write(&ours_path, ours).expect("write");
        let ours = File::open(&ours_path).expect("open");
        holds_our_bytes(&dir_fd(dir.path()), name, &ours, &Cancelled::default()).expect("compared")
    }

    #[test]
    fn the_same_bytes_are_ours_and_any_other_are_not() {
        let dir = tempfile::tempdir().expect("dir");
        // Over several steps, differing in the last byte only.
        let mut bytes: Vec<u8> = (0..STEP * 3 + 17).map(|n| (n % 251) as u8).collect();
        std::fs::write(dir.path().join("a.bin"), &bytes).expect("write");
        assert!(check(&dir, "a.bin", &bytes));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(!check(&dir, "a.bin", &bytes));
        bytes.pop();
        assert!(!check(&dir, "a.bin", &bytes), "shorter");
        std::fs::write(dir.path().join("empty"), b"").expect("write");
        assert!(check(&dir, "empty", b""));
        assert!(!check(&dir, "missing", b""));
    }

    #[test]
    fn a_link_a_fifo_or_a_folder_at_the_name_is_never_ours() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("target"), b"same").expect("write");
        std::os::unix::fs::symlink(dir.path().join("target"), dir.path().join("link"))
            .expect("link");
        assert!(check(&dir, "target", b"same"));
        assert!(!check(&dir, "link", b"same"), "a link is not followed");
        rustix::fs::mkfifoat(dir_fd(dir.path()), "fifo", Mode::from_raw_mode(0o600))
            .expect("mkfifo");
        // Opened, a FIFO without a writer would block this test forever.
        assert!(!check(&dir, "fifo", b""));
        std::fs::create_dir(dir.path().join("folder")).expect("mkdir");
        assert!(!check(&dir, "folder", b""));
    }
}
