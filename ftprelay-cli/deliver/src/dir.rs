//! `--dir`: move each upload into a directory, beneath it and nowhere
//! else.
//!
//! The folders of a devices-profile upload are created beneath the
//! directory one at a time, each opened relative to its parent without
//! following a symbolic link (`openat` with `O_NOFOLLOW`): a link planted
//! inside the directory, to `/etc` say, is refused, never followed. The
//! directory itself is the operator's and may be a link.

mod existing;

use std::fmt;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ftprelay_proto::{ProcessError, Upload};
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::cancel::{CancelOnDrop, Cancelled};
use crate::collision;
use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;
use crate::local_name::LocalName;
use crate::template::{Escape, Placeholder, Template, TemplateError, path_components};

/// `--dir`: stores each upload in a folder (a [`Template`]), complete or not
/// at all, never overwriting.
///
/// The file is written under a hidden temporary name in the target folder
/// and renamed to its name once complete, so a program watching the folder
/// (paperless-ngx, Nextcloud, Syncthing) never sees half a file. The name
/// is the upload's safe name; when it is taken, `name-1.jpg` …
/// `name-9.jpg`, then a unique `name-<time>-<n>.jpg`. The folder is the
/// template's; the devices profile's folders go beneath it unless the
/// template places `{path}` itself. Files get mode 0666 less the umask,
/// or [`Directory::mode`].
///
/// A taken name that already holds exactly the file's bytes (a regular
/// file, never a link followed) is the file delivered already: nothing
/// more is stored, and the log says `already delivered`. A repeated
/// delivery (a queue retrying after a crash, a device sending the same
/// file twice) leaves one copy.
///
/// Every failure (a folder that cannot be made, a full disk, no free
/// name) is transient, `451`: a disk an operator frees, a permission an
/// operator fixes, lets the retry through.
#[derive(Debug, Clone)]
pub struct Directory {
    /// The template's leading folders without placeholders: the operator's,
    /// made if missing, and followed if a link.
    base: PathBuf,
    /// The folders after it, each filled in per upload and opened beneath
    /// without following a link.
    beneath: Vec<Template>,
    /// Whether the devices profile's folders are added (the template has
    /// no `{path}`).
    add_folders: bool,
    mode: Option<u32>,
    source: String,
    /// This destination's number in the process, in its temporary names.
    instance: u64,
}

impl Directory {
    /// Stores uploads in the folder `template`; its folders up to the
    /// first placeholder are the operator's, made if missing. An unknown
    /// placeholder, or `.` or `..` after a placeholder, is an error.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let mut base = PathBuf::new();
        let mut beneath = Vec::new();
        if template.starts_with('/') {
            base.push("/");
        }
        for component in template.split('/').filter(|c| !c.is_empty()) {
            let parsed = Template::parse(component)?;
            if let (true, Some(text)) = (beneath.is_empty(), parsed.as_literal()) {
                base.push(text);
                continue;
            }
            if matches!(component, "." | "..") {
                return Err(TemplateError::Climbs {
                    template: template.to_owned(),
                });
            }
            beneath.push(parsed);
        }
        if base.as_os_str().is_empty() {
            base.push(".");
        }
        let add_folders = !beneath.iter().any(|t| t.uses(Placeholder::Path));
        Ok(Self {
            base,
            beneath,
            add_folders,
            mode: None,
            source: template.to_owned(),
            instance: {
                static INSTANCES: std::sync::atomic::AtomicU64 =
                    std::sync::atomic::AtomicU64::new(0);
                INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        })
    }

    /// Files get `mode` (e.g. `0o640`) instead of 0666 less the umask.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The folders beneath the base for `fields`: the template's, then the
    /// devices profile's unless the template placed them.
    fn folders(&self, fields: &Fields) -> Vec<String> {
        let mut folders = Vec::new();
        for template in &self.beneath {
            let rendered = template.render(fields, Escape::None);
            // `{path}` is folders joined by `/`; every other value is one
            // safe component.
            folders.extend(path_components(&rendered));
        }
        if self.add_folders {
            folders.extend(fields.folders().iter().cloned());
        }
        folders
    }
}

impl Destination for Directory {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        let folders = self.folders(fields);
        let name = LocalName::new(upload.file_name());
        let base = self.base.clone();
        let source = upload.path().to_owned();
        let mode = self.mode.unwrap_or_else(default_mode);
        // Unique to the upload and to this destination: two folder
        // destinations of one upload may be the same folder.
        let temporary = format!(".ftprelay-{}-{}.part", fields.id(), self.instance);
        Box::pin(async move {
            // The thread cannot be stopped; it looks before each step and
            // never renames into place once this future is gone.
            let guard = CancelOnDrop::default();
            let cancelled = guard.token();
            let placed = smol::unblock(move || {
                place(
                    &base, &folders, &source, &name, &temporary, mode, &cancelled,
                )
            })
            .await;
            drop(guard);
            match placed {
                Ok(Placed::Stored(target)) => {
                    tracing::info!(target = %target.display(), "stored");
                    Ok(())
                }
                Ok(Placed::AlreadyThere(target)) => {
                    tracing::info!(target = %target.display(), "already delivered (the file at the name holds these bytes)");
                    Ok(())
                }
                Err(e) => Err(ProcessError::transient(format!("storing the file: {e}"))),
            }
        })
    }
}

impl fmt::Display for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dir {}", self.source)
    }
}

/// 0666 less this process's umask (read once, from `/proc/self/status`:
/// setting the umask to read it would race with other threads' files).
fn default_mode() -> u32 {
    static MODE: OnceLock<u32> = OnceLock::new();
    *MODE.get_or_init(|| {
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status.lines().find_map(|line| {
                    let value = line.strip_prefix("Umask:")?;
                    u32::from_str_radix(value.trim(), 8).ok()
                })
            })
            .unwrap_or(0o022);
        0o666 & !umask
    })
}

/// Where a file went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placed {
    /// Renamed to this path.
    Stored(PathBuf),
    /// Found at this path already, the same bytes: not stored again.
    AlreadyThere(PathBuf),
}

impl Placed {
    #[cfg(test)]
    fn path(&self) -> &Path {
        match self {
            Self::Stored(path) | Self::AlreadyThere(path) => path,
        }
    }
}

/// Writes `source` into `base/folders…/` under a hidden temporary name,
/// then renames it to the first free spelling of `name`, or finds it
/// there already; returns the path it got. Nothing is left behind on
/// failure, nor when it was there already.
fn place(
    base: &Path,
    folders: &[String],
    source: &Path,
    name: &LocalName,
    temporary: &str,
    mode: u32,
    cancelled: &Cancelled,
) -> io::Result<Placed> {
    let dir = open_beneath(base, folders)?;
    let mut shown = base.to_owned();
    shown.extend(folders);
    fill_temporary(&dir, source, temporary, mode, cancelled)?;
    // The rename is what makes the file visible: not once the relay gave
    // up on the upload (checked right before it; what is left is the
    // moment between the check and the rename).
    let renamed = cancelled
        .check()
        .and_then(|()| rename_to_free_name(&dir, temporary, name, &shown, cancelled));
    if !matches!(renamed, Ok(Placed::Stored(_))) {
        let _ = rustix::fs::unlinkat(&dir, temporary, AtFlags::empty());
    }
    let placed = renamed?;
    // The rename itself survives a crash once the folder is synced.
    let _ = rustix::fs::fsync(&dir);
    Ok(placed)
}

/// The complete file under `temporary` in `dir`, with `mode`, synced: a
/// copy of its own, never a hard link to the spool file (a link would
/// share the inode with what the upload's other destinations read: a mode
/// given to it would apply to theirs, and an `--exec` that edits `$1` would
/// edit the stored file after it was stored).
fn fill_temporary(
    dir: &OwnedFd,
    source: &Path,
    temporary: &str,
    mode: u32,
    cancelled: &Cancelled,
) -> io::Result<()> {
    let mut copied = copy_exclusive(dir, source, temporary, mode, cancelled);
    if copied
        .as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::AlreadyExists)
    {
        // The name is this upload's and this destination's alone: what is
        // there is the half-written copy of an attempt the relay did not
        // finish (killed mid-copy; a queue tries again after the restart).
        // Removed, never delivered; unlinkat does not follow a link.
        tracing::info!(
            temporary,
            "removed the unfinished copy of an earlier attempt"
        );
        let _ = rustix::fs::unlinkat(dir, temporary, AtFlags::empty());
        copied = copy_exclusive(dir, source, temporary, mode, cancelled);
    }
    copied.map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("the temporary name {temporary} is taken"),
            )
        } else {
            e
        }
    })
}

/// Renames `temporary` to the first free spelling of `name`, never
/// replacing a file; or, when a spelling taken on the way holds exactly
/// the temporary's bytes, leaves it there (the caller removes the
/// temporary).
fn rename_to_free_name(
    dir: &OwnedFd,
    temporary: &str,
    name: &LocalName,
    shown: &Path,
    cancelled: &Cancelled,
) -> io::Result<Placed> {
    // Opened when a name is first found taken.
    let mut ours: Option<std::fs::File> = None;
    for suffix in collision::suffixes() {
        let candidate = name.spelled(&suffix);
        match rename_no_replace(dir, temporary, &candidate) {
            Ok(()) => return Ok(Placed::Stored(shown.join(candidate))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let ours = match &mut ours {
                    Some(file) => file,
                    None => ours.insert(open_temporary(dir, temporary)?),
                };
                if existing::holds_our_bytes(dir, &candidate, ours, cancelled)? {
                    return Ok(Placed::AlreadyThere(shown.join(candidate)));
                }
            }
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

/// The temporary this delivery wrote, for reading back.
fn open_temporary(dir: &OwnedFd, temporary: &str) -> io::Result<std::fs::File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, temporary, flags, Mode::empty())?;
    Ok(std::fs::File::from(fd))
}

/// `renameat2(RENAME_NOREPLACE)`; where the file system has no such
/// rename, a hard link and an unlink (as atomic for the name).
fn rename_no_replace(dir: &OwnedFd, from: &str, to: &str) -> io::Result<()> {
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(Errno::INVAL | Errno::NOSYS) => {
            match rustix::fs::linkat(dir, from, dir, to, AtFlags::empty()) {
                Ok(()) => {
                    let _ = rustix::fs::unlinkat(dir, from, AtFlags::empty());
                    Ok(())
                }
                Err(Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
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

/// A copy of `source` named `name` in `dir`, created exclusively with
/// `mode`, synced; removed again on failure.
fn copy_exclusive(
    dir: &OwnedFd,
    source: &Path,
    name: &str,
    mode: u32,
    cancelled: &Cancelled,
) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let created = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => fd,
        Err(Errno::EXIST) => return Err(io::ErrorKind::AlreadyExists.into()),
        Err(e) => return Err(e.into()),
    };
    let mut output = std::fs::File::from(created);
    let copied = rustix::fs::fchmod(&output, Mode::from_raw_mode(mode))
        .map_err(io::Error::from)
        .and_then(|()| std::fs::File::open(source))
        .and_then(|input| copy_cancellable(&input, &output, cancelled));
    if let Err(e) = copied
        .and_then(|_| output.flush())
        .and_then(|()| output.sync_all())
    {
        let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        return Err(e);
    }
    Ok(())
}

/// Copies `input` to `output` in the kernel (`copy_file_range`: a reflink
/// where the file system has them), 8 MiB at a time, looking for
/// cancellation between steps; by reading and writing where the kernel
/// cannot.
fn copy_cancellable(
    input: &std::fs::File,
    output: &std::fs::File,
    cancelled: &Cancelled,
) -> io::Result<u64> {
    const STEP: usize = 8 << 20;
    let mut copied = 0u64;
    loop {
        cancelled.check()?;
        match rustix::fs::copy_file_range(input, None, output, None, STEP) {
            Ok(0) => return Ok(copied),
            Ok(n) => copied += n as u64,
            // Nothing copied yet, and the kernel cannot (an old kernel,
            // some file systems): the plain way, from where it stopped.
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) if copied == 0 => {
                let mut reader = cancelled.reader(input);
                let mut writer = output;
                return io::copy(&mut reader, &mut writer);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn with_path(errno: Errno, path: PathBuf) -> io::Error {
    let error = io::Error::from(errno);
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(
        base: &Path,
        folders: &[String],
        source: &Path,
        name: &LocalName,
    ) -> io::Result<PathBuf> {
        put_placed(base, folders, source, name).map(|placed| placed.path().to_owned())
    }

    fn put_placed(
        base: &Path,
        folders: &[String],
        source: &Path,
        name: &LocalName,
    ) -> io::Result<Placed> {
        place(
            base,
            folders,
            source,
            name,
            ".ftprelay-test.part",
            0o640,
            &Cancelled::default(),
        )
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

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
        let first = put(target.path(), &[], &source, &name).expect("place");
        std::fs::write(&source, b"two").expect("write");
        let second = put(target.path(), &[], &source, &name).expect("place");
        assert_eq!(first, target.path().join("scan.pdf"));
        assert_eq!(second, target.path().join("scan-1.pdf"));
        assert_eq!(std::fs::read(&first).expect("read"), b"one");
        assert_eq!(std::fs::read(&second).expect("read"), b"two");
    }

    #[test]
    fn the_same_bytes_delivered_again_leave_one_copy() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let name = LocalName::new(b"scan.pdf");
        let first = put_placed(target.path(), &[], &source, &name).expect("place");
        let again = put_placed(target.path(), &[], &source, &name).expect("place");
        let stored = target.path().join("scan.pdf");
        assert_eq!(first, Placed::Stored(stored.clone()));
        assert_eq!(again, Placed::AlreadyThere(stored.clone()));
        assert_eq!(names(target.path()), ["scan.pdf"], "no copy, no temporary");
        assert_eq!(std::fs::read(&stored).expect("read"), b"one");
        // Other bytes under the name: the next name, as before; and the
        // same bytes again find their copy at the name they got.
        std::fs::write(&source, b"two").expect("write");
        let other = put_placed(target.path(), &[], &source, &name).expect("place");
        assert_eq!(other, Placed::Stored(target.path().join("scan-1.pdf")));
        let other_again = put_placed(target.path(), &[], &source, &name).expect("place");
        assert_eq!(
            other_again,
            Placed::AlreadyThere(target.path().join("scan-1.pdf"))
        );
        assert_eq!(names(target.path()), ["scan-1.pdf", "scan.pdf"]);
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
        let first = put(target.path(), &[], &source, &name).expect("a free name");
        let second = put(target.path(), &[], &source, &name).expect("a free name");
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
        let placed = put(target.path(), &folders, &source, &name).expect("place");
        assert_eq!(placed, target.path().join("NVR01/ch1/x.jpg"));
        std::os::unix::fs::symlink(outside.path(), target.path().join("planted")).expect("link");
        let error = put(target.path(), &["planted".to_owned()], &source, &name)
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
        let placed = put(target.path(), &[], &source, &LocalName::new(b"x.jpg")).expect("place");
        assert_eq!(placed, target.path().join("x-1.jpg"));
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
        // A link to a file of the very bytes is not the file delivered:
        // the link is another file, never followed.
        let twin = outside.path().join("twin");
        std::fs::write(&twin, b"one").expect("write");
        std::os::unix::fs::symlink(&twin, target.path().join("y.jpg")).expect("link");
        let placed =
            put_placed(target.path(), &[], &source, &LocalName::new(b"y.jpg")).expect("place");
        assert_eq!(placed, Placed::Stored(target.path().join("y-1.jpg")));
    }

    #[test]
    fn the_file_appears_complete_with_its_mode_and_no_temporary_is_left() {
        use std::os::unix::fs::PermissionsExt as _;
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let placed = put(target.path(), &[], &source, &LocalName::new(b"scan.pdf")).expect("place");
        let mode = std::fs::metadata(&placed)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        let names: Vec<_> = std::fs::read_dir(target.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("scan.pdf")]);
        assert!(default_mode() & 0o111 == 0, "never executable");
    }

    #[test]
    fn the_half_copy_of_a_killed_attempt_is_replaced_never_delivered() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        // What a relay killed mid-copy left under this delivery's name.
        std::fs::write(target.path().join(".ftprelay-test.part"), b"o").expect("write");
        let placed = put(target.path(), &[], &source, &LocalName::new(b"a.txt")).expect("place");
        assert_eq!(std::fs::read(&placed).expect("read"), b"one");
        let names: Vec<_> = std::fs::read_dir(target.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
    }

    #[test]
    fn a_delivery_given_up_on_is_never_renamed_into_place() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let guard = CancelOnDrop::default();
        let cancelled = guard.token();
        drop(guard);
        let name = LocalName::new(b"x.jpg");
        let error = place(
            target.path(),
            &[],
            &source,
            &name,
            ".t.part",
            0o644,
            &cancelled,
        )
        .expect_err("given up on");
        assert_eq!(error.kind(), io::ErrorKind::Interrupted);
        assert_eq!(std::fs::read_dir(target.path()).expect("dir").count(), 0);
    }

    #[test]
    fn the_stored_file_is_its_own_copy_never_the_spool_files_inode() {
        use std::os::unix::fs::MetadataExt as _;
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let placed = put(target.path(), &[], &source, &LocalName::new(b"a.txt")).expect("place");
        let stored = std::fs::metadata(&placed).expect("stat");
        let spooled = std::fs::metadata(&source).expect("stat");
        assert_ne!(stored.ino(), spooled.ino());
        // Another destination editing the spool file does not edit it.
        std::fs::write(&source, b"edited").expect("write");
        assert_eq!(std::fs::read(&placed).expect("read"), b"one");
    }

    #[test]
    fn two_destinations_of_one_upload_in_one_folder_store_it_once() {
        let spool = tempfile::tempdir().expect("dir");
        let target = tempfile::tempdir().expect("dir");
        let source = spool_file(&spool);
        let first = Directory::parse(&target.path().display().to_string()).expect("valid");
        let second = Directory::parse(&format!("{}/", target.path().display())).expect("valid");
        assert_ne!(first.instance, second.instance);
        let fields = Fields::for_test("same.txt", &[]);
        for dir in [&first, &second] {
            let temporary = format!(".ftprelay-{}-{}.part", fields.id(), dir.instance);
            place(
                &dir.base,
                &dir.folders(&fields),
                &source,
                &LocalName::new(b"same.txt"),
                &temporary,
                0o644,
                &Cancelled::default(),
            )
            .expect("stored");
        }
        // Their temporaries do not collide; the second finds the first's
        // copy, the same bytes, and stores no other.
        assert_eq!(names(target.path()), ["same.txt"]);
    }

    #[test]
    fn a_failed_copy_leaves_no_temporary_behind() {
        let target = tempfile::tempdir().expect("dir");
        let missing = target.path().join("no-such-spool-file");
        let error =
            put(target.path(), &[], &missing, &LocalName::new(b"x.jpg")).expect_err("no source");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(target.path()).expect("dir").count(), 0);
    }

    proptest::proptest! {
        /// Whatever the names of the upload and its folders, and whatever
        /// the template after its base, the folders made beneath the base
        /// are single components that never climb.
        #[test]
        fn folders_never_climb(
            name in "\\PC{0,12}",
            folders in proptest::collection::vec("[./a-z\\\\%{}]{0,6}", 0..4),
            template in proptest::sample::select(vec![
                "/srv/{user}", "/srv/{path}", "/srv/{stem}{ext}/{path}/..x", "/srv/{name}/{ext}.",
            ]),
        ) {
            let folder_refs: Vec<&str> = folders.iter().map(String::as_str).collect();
            let fields = Fields::for_test(&name, &folder_refs);
            let dir = Directory::parse(template).expect("valid");
            for component in dir.folders(&fields) {
                proptest::prop_assert!(!component.is_empty());
                proptest::prop_assert!(component != "." && component != "..", "{component:?}");
                proptest::prop_assert!(!component.contains(['/', '\0']), "{component:?}");
            }
        }
    }

    #[test]
    fn templated_folders_go_beneath_the_literal_base() {
        let dir = Directory::parse("/srv/scans/{user}/{date}").expect("valid");
        assert_eq!(dir.base, Path::new("/srv/scans"));
        let fields = Fields::for_test("a.pdf", &["NVR01"]);
        assert_eq!(dir.folders(&fields), ["demo", "2026-12-02", "NVR01"]);
        let placed = Directory::parse("in/{path}/x").expect("valid");
        assert_eq!(placed.folders(&fields), ["NVR01", "x"]);
        assert!(Directory::parse("/srv/{user}/../etc").is_err());
        assert!(Directory::parse("/srv/{usr}").is_err());
    }
}
