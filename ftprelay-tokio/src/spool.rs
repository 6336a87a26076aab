//! The spool: where uploads are written while they arrive and are processed.
//!
//! Every spool file is deleted when its handle is dropped, so an upload that
//! ends in any way (processed, failed, aborted, cancelled with its task)
//! leaves nothing behind. A crash can; the next start sweeps what a relay
//! left, recognised by name, and nothing else.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use proto::{SPOOL_FILE_PREFIX, is_spool_file_name};
use tempfile::{TempDir, TempPath};

/// The spool directory of one relay.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    /// Set when the relay made the directory itself: removed with the relay.
    _owned: Option<TempDir>,
}

impl Spool {
    /// Opens `dir` (created if missing, then swept of the relay's own
    /// leftovers), or a fresh private directory under the system temp dir.
    pub(crate) fn open(dir: Option<&Path>) -> io::Result<Self> {
        match dir {
            Some(dir) => {
                fs::create_dir_all(dir)
                    .map_err(|e| with_path(e, "cannot create spool directory", dir))?;
                let swept =
                    sweep(dir).map_err(|e| with_path(e, "cannot read spool directory", dir))?;
                if swept > 0 {
                    tracing::warn!(spool = %dir.display(), files = swept, "removed spool files left by an earlier run");
                }
                Ok(Self {
                    dir: dir.to_owned(),
                    _owned: None,
                })
            }
            None => {
                let owned = tempfile::Builder::new().prefix("ftprelay-").tempdir()?;
                Ok(Self {
                    dir: owned.path().to_owned(),
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

/// Removes the relay's own spool files from `dir`; returns how many.
fn sweep(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if is_spool_file_name(&entry.file_name()) && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
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
