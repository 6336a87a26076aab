//! The queue directory on disk, and the only code that changes it.
//!
//! ```text
//! DIR/.ftprelay-queue.lock   held by the relay that uses DIR
//! DIR/tmp/                   files being written (emptied at start)
//! DIR/journal/SEQ.log        what makes the latest uploads durable
//! DIR/active/ID.{data,json,state}   acknowledged, being delivered
//! DIR/failed/ID.{data,json,state}   given up on; the state says why
//! DIR/corrupt/               what could not be read, moved aside
//! DIR/requests/              `ftprelay queue retry|drop` for a running relay
//! ```
//!
//! An upload is in the directory that holds its `ID.json`, or, until a
//! checkpoint writes that file, its record in the journal (see
//! `journal.rs`): the record is renamed last when an upload moves, so
//! that it marks a complete move; parts found elsewhere at start-up are
//! moved to it. Data without a record anywhere was never acknowledged.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::journal;
use super::record::{Record, State, is_id};

const LOCK: &str = ".ftprelay-queue.lock";
const TMP: &str = "tmp";
/// The folder of uploads being delivered.
pub(crate) const ACTIVE: &str = "active";
/// The folder of uploads given up on.
pub(crate) const FAILED: &str = "failed";
const CORRUPT: &str = "corrupt";
/// The folder of the journal's segments.
pub(crate) const JOURNAL: &str = "journal";
/// The folder of requests from `ftprelay queue`.
pub(crate) const REQUESTS: &str = "requests";
const FOLDERS: [&str; 6] = [TMP, JOURNAL, ACTIVE, FAILED, CORRUPT, REQUESTS];

/// The three files of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The bytes.
    Data,
    /// The [`Record`].
    Record,
    /// The [`State`].
    State,
}

impl Part {
    const ALL: [Self; 3] = [Self::Data, Self::State, Self::Record];

    fn extension(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Record => "json",
            Self::State => "state",
        }
    }

    fn of(extension: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.extension() == extension)
    }
}

/// One upload found on disk.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) record: Record,
    pub(crate) state: State,
    /// In `failed/`.
    pub(crate) failed: bool,
}

/// A queue directory.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    /// Held while the relay runs (`None` for a reader: `ftprelay queue
    /// list` next to a running relay).
    _lock: Option<File>,
    /// Whether the next [`Store::load`] removes data without a record
    /// (left by a commit a crash interrupted): only before the committer
    /// runs, whose uploads are in that state for a moment.
    sweep: AtomicBool,
    /// Held while an upload's files change, so that the checkpoint and
    /// the delivery loop never move one upload's files at once.
    changes: Mutex<()>,
}

impl Store {
    /// Opens `root` for the relay: created if missing, locked (a second
    /// relay is refused), its unfinished commits removed.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        for folder in FOLDERS {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root.join(folder))
                .map_err(|e| with_path(e, "cannot create the queue directory", root))?;
        }
        let lock = lock(root)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "the queue directory {} is in use by another ftprelay",
                    root.display()
                ),
            )
        })?;
        let store = Self::new(root, Some(lock));
        store.clear_tmp();
        store.replay_journal()?;
        Ok(store)
    }

    /// Opens `root` to read, or (no relay running: `locked` is true) to
    /// change with the lock held.
    pub(crate) fn inspect(root: &Path) -> io::Result<(Self, bool)> {
        if !root.join(ACTIVE).is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a queue directory", root.display()),
            ));
        }
        let lock = lock(root)?;
        let locked = lock.is_some();
        let store = Self::new(root, lock);
        if locked {
            store.replay_journal()?;
        }
        Ok((store, locked))
    }

    fn new(root: &Path, lock: Option<File>) -> Self {
        Self {
            root: root.to_owned(),
            sweep: AtomicBool::new(lock.is_some()),
            _lock: lock,
            changes: Mutex::new(()),
        }
    }

    /// The queue directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The folder `name` of the queue.
    pub(crate) fn folder(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where `part` of upload `id` is, in `failed/` or `active/`.
    pub(crate) fn path(&self, id: &str, part: Part, failed: bool) -> PathBuf {
        self.folder(if failed { FAILED } else { ACTIVE })
            .join(format!("{id}.{}", part.extension()))
    }

    /// Where `part` of upload `id` is staged.
    pub(crate) fn staging(&self, id: &str, part: Part) -> PathBuf {
        self.folder(TMP).join(format!("{id}.{}", part.extension()))
    }

    fn clear_tmp(&self) {
        let mut removed = 0;
        for entry in read_dir(&self.folder(TMP)) {
            if fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(queue = %self.root.display(), files = removed, "removed unfinished queue commits (never acknowledged)");
        }
    }

    /// Every upload in `active/` and `failed/`, by id. Parts of one upload
    /// in two folders are joined where its record is; what cannot be read
    /// is moved to `corrupt/` with a log line, and never stops the rest.
    pub(crate) fn load(&self) -> BTreeMap<String, Found> {
        if self._lock.is_some() {
            self.move_aside_foreign_entries();
        }
        // The journal before the folders: a checkpoint writes an upload's
        // record file before it deletes the segment, so one of the two is
        // always seen.
        let journal = self.journal_records();
        let mut parts: BTreeMap<String, Vec<(Part, bool)>> = BTreeMap::new();
        for failed in [false, true] {
            let folder = self.folder(if failed { FAILED } else { ACTIVE });
            for entry in read_dir(&folder) {
                let name = entry.file_name();
                let parsed = name.to_str().and_then(|name| {
                    let (id, extension) = name.split_once('.')?;
                    Some((id.to_owned(), Part::of(extension)?))
                });
                match parsed {
                    Some((id, part)) if is_id(&id) && is_plain_file(&entry) => {
                        parts.entry(id).or_default().push((part, failed));
                    }
                    _ => self.move_aside(&entry.path(), "not a file of the queue"),
                }
            }
        }
        let sweep = self.sweep.swap(false, Ordering::Relaxed);
        let mut found = BTreeMap::new();
        for (id, parts) in parts {
            if let Some(upload) = self.join(&id, &parts, journal.get(&id), sweep) {
                found.insert(id, upload);
            }
        }
        found
    }

    /// The records only the journal has yet, by id (the latest, if one is
    /// there twice).
    fn journal_records(&self) -> BTreeMap<String, Vec<u8>> {
        let mut records = BTreeMap::new();
        for segment in journal::segments(&self.folder(JOURNAL)) {
            let read = journal::read_segment(&segment, false).unwrap_or_default();
            for entry in read.entries {
                if let Ok(record) = serde_json::from_slice::<Record>(&entry.record)
                    && is_id(&record.id)
                {
                    records.insert(record.id, entry.record);
                }
            }
        }
        records
    }

    /// Upload `id`, if it is in the queue.
    pub(crate) fn load_one(&self, id: &str) -> Option<Found> {
        if !is_id(id) {
            return None;
        }
        let journal = self.journal_records();
        let mut parts = Vec::new();
        for failed in [false, true] {
            for part in Part::ALL {
                if self.path(id, part, failed).is_file() {
                    parts.push((part, failed));
                }
            }
        }
        if parts.is_empty() {
            return None;
        }
        self.join(id, &parts, journal.get(id), false)
    }

    /// The upload `id` of `parts`, read and made whole; `journaled`: its
    /// record in the journal, if there. With `sweep`, parts without a
    /// record are removed.
    fn join(
        &self,
        id: &str,
        parts: &[(Part, bool)],
        journaled: Option<&Vec<u8>>,
        sweep: bool,
    ) -> Option<Found> {
        let read_only = self._lock.is_none();
        let Some(&(_, failed)) = parts.iter().find(|(part, _)| *part == Part::Record) else {
            let data = parts.iter().find(|(part, _)| *part == Part::Data);
            if let (Some(json), Some(&(_, failed))) = (journaled, data) {
                return self.join_journaled(id, json, parts, failed);
            }
            // Without a record anywhere the upload was never acknowledged
            // (or never completely moved back).
            if !read_only && sweep {
                for &(part, failed) in parts {
                    let _ = fs::remove_file(self.path(id, part, failed));
                }
                tracing::info!(
                    id,
                    "removed an unfinished queue commit (never acknowledged)"
                );
            }
            return None;
        };
        if !read_only {
            for &(part, elsewhere) in parts {
                if elsewhere != failed {
                    let _ = fs::rename(self.path(id, part, elsewhere), self.path(id, part, failed));
                }
            }
        }
        let record = match read_json::<Record>(&self.path(id, Part::Record, failed))
            .and_then(|record| record.check(id).map(|()| record))
        {
            Ok(record) => record,
            Err(reason) => {
                self.move_upload_aside(id, failed, &format!("unreadable record: {reason}"));
                return None;
            }
        };
        if !parts.iter().any(|(part, _)| *part == Part::Data) {
            self.move_upload_aside(id, failed, "its data file is missing");
            return None;
        }
        Some(self.with_state(id, record, parts, failed))
    }

    /// An upload whose record only the journal has yet.
    fn join_journaled(
        &self,
        id: &str,
        json: &[u8],
        parts: &[(Part, bool)],
        failed: bool,
    ) -> Option<Found> {
        let record = serde_json::from_slice::<Record>(json)
            .map_err(|e| e.to_string())
            .and_then(|record| record.check(id).map(|()| record))
            .ok()?;
        Some(self.with_state(id, record, parts, failed))
    }

    /// `record` with the state beside it (a new one if there is none or
    /// it cannot be used).
    fn with_state(&self, id: &str, record: Record, parts: &[(Part, bool)], failed: bool) -> Found {
        let state = match read_json::<State>(&self.path(id, Part::State, failed)) {
            Ok(state) if state.destinations.len() == record.destinations.len() => state,
            Ok(_) => {
                tracing::warn!(
                    id,
                    "the queue state names other destinations than the record; starting over"
                );
                State::new(&record)
            }
            Err(_) if !parts.iter().any(|(part, _)| *part == Part::State) => State::new(&record),
            Err(reason) => {
                tracing::warn!(id, reason, "unreadable queue state; starting over");
                State::new(&record)
            }
        };
        Found {
            record,
            state,
            failed,
        }
    }

    /// Moves anything at the top of the queue directory that is not the
    /// queue's to `corrupt/`.
    fn move_aside_foreign_entries(&self) {
        for entry in read_dir(&self.root) {
            let name = entry.file_name();
            let ours = name == LOCK || FOLDERS.iter().any(|folder| name == *folder);
            if !ours {
                self.move_aside(&entry.path(), "not a file of the queue");
            }
        }
    }

    /// Moves every part of upload `id` to `corrupt/`.
    fn move_upload_aside(&self, id: &str, failed: bool, reason: &str) {
        if self._lock.is_none() {
            return;
        }
        tracing::error!(id, reason, queue = %self.root.display(), "a queued upload cannot be read; moved to corrupt/");
        for part in Part::ALL {
            let path = self.path(id, part, failed);
            if path.exists() {
                self.rename_aside(&path);
            }
        }
    }

    fn move_aside(&self, path: &Path, reason: &str) {
        if self._lock.is_none() {
            return;
        }
        tracing::warn!(path = %path.display(), reason, "moved to the queue's corrupt/");
        self.rename_aside(path);
    }

    fn rename_aside(&self, path: &Path) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut target = self.folder(CORRUPT).join(&*name);
        let mut n = 0;
        while target.exists() && n < 1000 {
            n += 1;
            target = self.folder(CORRUPT).join(format!("{name}.{n}"));
        }
        if let Err(error) = fs::rename(path, &target) {
            tracing::error!(path = %path.display(), %error, "cannot move aside");
        }
    }

    /// Writes `state` of `id` durably (a temporary file, synced, renamed).
    pub(crate) fn write_state(&self, id: &str, state: &State, failed: bool) -> io::Result<()> {
        let staged = self.staging(id, Part::State);
        write_synced(&staged, &to_json(state)?)?;
        fs::rename(&staged, self.path(id, Part::State, failed))
    }

    /// Replaces the record of `id` durably (a held upload renamed).
    pub(crate) fn rewrite_record(&self, record: &Record) -> io::Result<()> {
        let _changing = self.changing();
        let staged = self.staging(&record.id, Part::Record);
        write_synced(&staged, &to_json(record)?)?;
        fs::rename(&staged, self.path(&record.id, Part::Record, false))?;
        sync_dir(&self.folder(ACTIVE))
    }

    /// Removes upload `id` (delivered, or dropped): the record first, so
    /// that a crash halfway leaves an upload without a record, which the
    /// next start removes.
    pub(crate) fn remove(&self, id: &str, failed: bool) -> io::Result<()> {
        let _changing = self.changing();
        // The record is missing when only the journal has it yet.
        let record = remove_if_there(&self.path(id, Part::Record, failed));
        let data = remove_if_there(&self.path(id, Part::Data, failed));
        let _ = fs::remove_file(self.path(id, Part::State, failed));
        record.and(data)
    }

    /// Moves upload `id` between `active/` and `failed/` with `state`
    /// (which says why): the record last, then the folder synced.
    pub(crate) fn move_upload(
        &self,
        record: &Record,
        state: &State,
        to_failed: bool,
    ) -> io::Result<()> {
        let _changing = self.changing();
        let id = record.id.as_str();
        let from = !to_failed;
        let record_path = self.path(id, Part::Record, from);
        if !record_path.exists() {
            // Only in the journal yet: the move needs the file.
            let staged = self.staging(id, Part::Record);
            write_synced(&staged, &to_json(record)?)?;
            fs::rename(&staged, &record_path)?;
        }
        self.write_state(id, state, from)?;
        for part in Part::ALL {
            fs::rename(self.path(id, part, from), self.path(id, part, to_failed))?;
            if to_failed {
                kill_point(match part {
                    Part::Data => "to-failed-after-data",
                    Part::State => "to-failed-after-state",
                    Part::Record => "to-failed-after-record",
                });
            }
        }
        sync_dir(&self.folder(if to_failed { FAILED } else { ACTIVE }))
    }

    fn changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The checkpoint of closed journal segments: every upload of them
    /// still waiting gets its record file, one flush of the file system
    /// makes them (and their data) durable, and the segments go.
    pub(crate) fn checkpoint(&self, segments: &[journal::Closed]) -> io::Result<()> {
        for closed in segments {
            for (id, json) in &closed.uploads {
                let _changing = self.changing();
                let record = self.path(id, Part::Record, false);
                if self.path(id, Part::Data, false).exists() && !record.exists() {
                    // Its own staging name: a release may be writing the
                    // record's (under the same lock, but not the same file).
                    let staged = self.folder(TMP).join(format!("{id}.checkpoint"));
                    let mut file = create(&staged)?;
                    file.write_all(json)?;
                    fs::rename(&staged, &record)?;
                }
            }
        }
        journal::sync_file_system(&self.folder(ACTIVE))?;
        for closed in segments {
            remove_if_there(&closed.path)?;
        }
        Ok(())
    }

    /// After a crash: every upload of the journal's segments whose data is
    /// still in the queue gets its bytes and its record back from the
    /// journal (what the crash left of their files may be half-written),
    /// then the segments go. An upload whose data is gone was delivered
    /// or dropped after its commit. A segment that cannot be read whole
    /// is moved to `corrupt/`, and this start removes no data without a
    /// record (it may be of an upload the damage hides).
    fn replay_journal(&self) -> io::Result<()> {
        let folder = self.folder(JOURNAL);
        for entry in read_dir(&folder) {
            if !(is_plain_file(&entry) && journal::sequence(&entry.path()).is_some()) {
                self.move_aside(&entry.path(), "not a segment of the queue journal");
            }
        }
        let segments = journal::segments(&folder);
        if segments.is_empty() {
            return Ok(());
        }
        let mut restored = 0;
        let mut damaged = Vec::new();
        for segment in &segments {
            let read = match journal::read_segment(segment, true) {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(segment = %segment.display(), %error, "cannot read a queue journal segment");
                    damaged.push(segment);
                    continue;
                }
            };
            for entry in &read.entries {
                match self.replay(entry) {
                    Ok(true) => restored += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::error!(segment = %segment.display(), %error, "cannot restore an upload from the queue journal");
                        damaged.push(segment);
                    }
                }
            }
            if read.damaged {
                tracing::error!(segment = %segment.display(), "the queue journal is damaged: uploads after a bad frame cannot be read");
                damaged.push(segment);
            }
        }
        sync_dir(&self.folder(ACTIVE))?;
        sync_dir(&self.folder(FAILED))?;
        for segment in &segments {
            if damaged.contains(&segment) {
                self.move_aside(segment, "a damaged queue journal segment");
            } else {
                fs::remove_file(segment)?;
            }
        }
        sync_dir(&folder)?;
        if !damaged.is_empty() {
            self.sweep.store(false, Ordering::Relaxed);
        }
        tracing::info!(queue = %self.root.display(), uploads = restored, "replayed the queue's journal after an unclean stop");
        Ok(())
    }

    /// Replays one journal entry; whether its upload is still queued.
    fn replay(&self, entry: &journal::Entry) -> io::Result<bool> {
        let record = match serde_json::from_slice::<Record>(&entry.record) {
            Ok(record) if is_id(&record.id) && record.check(&record.id).is_ok() => record,
            _ => {
                tracing::warn!(queue = %self.root.display(), "an unreadable record in the queue journal; skipped");
                return Ok(false);
            }
        };
        let id = record.id.as_str();
        // The data may be in either folder, or in both when a move was cut
        // short: each copy gets the journal's bytes.
        let mut holding = Vec::new();
        for failed in [false, true] {
            let data = self.path(id, Part::Data, failed);
            if fs::symlink_metadata(&data).is_ok_and(|m| m.is_file()) {
                if let Some(bytes) = &entry.data {
                    let staged = self.staging(id, Part::Data);
                    write_synced(&staged, bytes)?;
                    fs::rename(&staged, &data)?;
                }
                holding.push(failed);
            }
        }
        let Some(&data_in_failed) = holding.first() else {
            return Ok(false);
        };
        let readable = |failed| {
            read_json::<Record>(&self.path(id, Part::Record, failed))
                .is_ok_and(|found| found.check(id).is_ok())
        };
        if !readable(false) && !readable(true) {
            // An unreadable record is replaced where it is; a missing one
            // is written beside the data.
            let failed = if self.path(id, Part::Record, true).exists() {
                true
            } else if self.path(id, Part::Record, false).exists() {
                false
            } else {
                data_in_failed
            };
            let staged = self.staging(id, Part::Record);
            write_synced(&staged, &entry.record)?;
            fs::rename(&staged, self.path(id, Part::Record, failed))?;
        }
        Ok(true)
    }
}

/// Debug builds only: kills this process with SIGKILL at the step that
/// `FTPRELAY_TEST_KILL_AT` names, for the tests of what a crash between
/// two steps leaves (a real kill -9 of a real relay, at the moment no
/// signal from outside could hit).
#[cfg(debug_assertions)]
fn kill_point(step: &str) {
    if std::env::var_os("FTPRELAY_TEST_KILL_AT").is_some_and(|at| at == step) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

#[cfg(not(debug_assertions))]
fn kill_point(_step: &str) {}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The directory's lock, or `None` if another process has it.
fn lock(root: &Path) -> io::Result<Option<File>> {
    let path = root.join(LOCK);
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(no_link_no_wait())
        .open(&path)
        .map_err(|e| with_path(e, "cannot open the queue lock", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(with_path(e, "cannot lock", &path)),
    }
}

/// Never through a symbolic link, never blocking on a FIFO.
pub(crate) fn no_link_no_wait() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32
}

fn read_dir(dir: &Path) -> impl Iterator<Item = fs::DirEntry> {
    fs::read_dir(dir).into_iter().flatten().flatten()
}

fn is_plain_file(entry: &fs::DirEntry) -> bool {
    entry.file_type().is_ok_and(|t| t.is_file())
}

/// The JSON in `path`, within the bound of a settings file.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = crate::small_file::read(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    text.push(b'\n');
    Ok(text)
}

/// Creates `path` with `bytes`, synced.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `path` (replacing a leftover), mode 0600, never through a link.
pub(crate) fn create(path: &Path) -> io::Result<File> {
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(no_link_no_wait())
        .open(path)
}

/// Makes the renames in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn with_path(error: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    //! The states a crash can leave, each made by hand as the commit, the
    //! move to `failed/` or the removal would have left it when killed
    //! between two steps.

    use super::*;
    use crate::queue::record::Progress;

    const ID: &str = "00061a2b3c4d5e6f";

    fn record() -> Record {
        Record {
            format: super::super::record::FORMAT,
            id: ID.to_owned(),
            user: b"cam".to_vec(),
            name: b"a.jpg".to_vec(),
            file_name: b"a.jpg".to_vec(),
            path: b"/a.jpg".to_vec(),
            peer: "127.0.0.1:5000".parse().expect("address"),
            size: 4,
            upload: 1,
            received_us: 1_796_000_000_000_000,
            destinations: vec!["discard".to_owned()],
            held: false,
        }
    }

    fn write(store: &Store, part: Part, failed: bool, bytes: &[u8]) {
        fs::write(store.path(ID, part, failed), bytes).expect("write");
    }

    fn opened() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    #[test]
    fn killed_before_the_record_was_renamed_the_upload_was_never_acknowledged() {
        let (dir, store) = opened();
        write(&store, Part::Data, false, b"data");
        fs::write(
            store.staging(ID, Part::Record),
            to_json(&record()).expect("json"),
        )
        .expect("w");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert!(store.load().is_empty());
        assert!(!store.path(ID, Part::Data, false).exists(), "removed");
        assert!(!store.staging(ID, Part::Record).exists(), "tmp/ emptied");
    }

    #[test]
    fn killed_halfway_to_failed_the_upload_is_whole_where_its_record_is() {
        let (_dir, store) = opened();
        // The data and state moved, the record not yet: still active.
        write(&store, Part::Data, true, b"data");
        write(
            &store,
            Part::Record,
            false,
            &to_json(&record()).expect("json"),
        );
        let found = store.load();
        let upload = found.get(ID).expect("kept");
        assert!(!upload.failed);
        assert_eq!(
            fs::read(store.path(ID, Part::Data, false)).expect("moved back"),
            b"data"
        );
        // And once the record moved: failed, with its parts.
        fs::rename(
            store.path(ID, Part::Record, false),
            store.path(ID, Part::Record, true),
        )
        .expect("rename");
        let found = store.load();
        assert!(found.get(ID).expect("kept").failed);
        assert!(store.path(ID, Part::Data, true).exists());
    }

    #[test]
    fn a_record_without_its_data_or_unreadable_is_moved_aside() {
        let (dir, store) = opened();
        write(
            &store,
            Part::Record,
            false,
            &to_json(&record()).expect("json"),
        );
        assert!(store.load().is_empty());
        assert!(dir.path().join(CORRUPT).join(format!("{ID}.json")).exists());
        write(&store, Part::Record, false, b"{\"format\": 99}");
        write(&store, Part::Data, false, b"data");
        assert!(store.load().is_empty());
        assert!(
            dir.path()
                .join(CORRUPT)
                .join(format!("{ID}.json.1"))
                .exists()
        );
        assert!(dir.path().join(CORRUPT).join(format!("{ID}.data")).exists());
    }

    #[test]
    fn a_bad_state_starts_over_and_a_good_one_is_kept() {
        let (_dir, store) = opened();
        write(
            &store,
            Part::Record,
            false,
            &to_json(&record()).expect("json"),
        );
        write(&store, Part::Data, false, b"data");
        write(&store, Part::State, false, b"garbage");
        assert_eq!(store.load()[ID].state, State::new(&record()));
        let mut state = State::new(&record());
        state.destinations[0] = Progress {
            attempts: 3,
            ..Progress::default()
        };
        store.write_state(ID, &state, false).expect("state");
        assert_eq!(store.load()[ID].state, state);
    }

    #[test]
    fn a_second_relay_is_refused_and_a_reader_changes_nothing() {
        let (dir, store) = opened();
        let error = Store::open(dir.path()).expect_err("locked");
        assert_eq!(error.kind(), io::ErrorKind::ResourceBusy);
        write(&store, Part::Data, false, b"orphan data");
        let (reader, locked) = Store::inspect(dir.path()).expect("inspect");
        assert!(!locked);
        assert!(reader.load().is_empty());
        assert!(
            store.path(ID, Part::Data, false).exists(),
            "a reader removes nothing"
        );
    }

    fn journal_with(store: &Store, record: &Record, data: Option<&[u8]>) -> PathBuf {
        let mut frames = Vec::new();
        journal::encode(&to_json(record).expect("json"), data, &mut frames);
        let path = store.folder(JOURNAL).join("0000000000000003.log");
        fs::write(&path, frames).expect("segment");
        path
    }

    #[test]
    fn after_a_crash_the_journal_restores_what_was_half_written() {
        let (dir, store) = opened();
        let segment = journal_with(&store, &record(), Some(b"data"));
        // The crash left the data link with other bytes, and no record.
        write(&store, Part::Data, false, b"da\0\0");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let found = store.load();
        assert_eq!(found[ID].record, record());
        assert_eq!(
            fs::read(store.path(ID, Part::Data, false)).expect("data"),
            b"data"
        );
        assert!(store.path(ID, Part::Record, false).exists());
        assert!(!segment.exists(), "replayed, then removed");
    }

    #[test]
    fn an_upload_gone_after_its_commit_is_not_brought_back() {
        let (dir, store) = opened();
        let segment = journal_with(&store, &record(), Some(b"data"));
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert!(store.load().is_empty());
        assert!(!store.path(ID, Part::Data, false).exists());
        assert!(!store.path(ID, Part::Record, false).exists());
        assert!(!segment.exists());
    }

    #[test]
    fn a_record_rewritten_after_the_commit_wins_over_the_journal() {
        let (dir, store) = opened();
        let mut held = record();
        held.held = true;
        journal_with(&store, &held, Some(b"data"));
        // Released under its new name after the commit: synced, newer.
        let mut released = record();
        released.name = b"final.jpg".to_vec();
        write(
            &store,
            Part::Record,
            false,
            &to_json(&released).expect("json"),
        );
        write(&store, Part::Data, false, b"data");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.load()[ID].record, released);
    }

    #[test]
    fn a_half_moved_upload_is_restored_in_failed() {
        let (dir, store) = opened();
        journal_with(&store, &record(), Some(b"data"));
        write(&store, Part::Data, true, b"\0\0\0\0");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let found = store.load();
        assert!(found[ID].failed);
        assert_eq!(
            fs::read(store.path(ID, Part::Data, true)).expect("data"),
            b"data"
        );
    }

    #[test]
    fn before_its_checkpoint_an_upload_is_read_from_the_journal_and_never_swept() {
        let (dir, store) = opened();
        // The relay's first load has swept; what it commits now has data
        // and a journal record but no record file yet.
        assert!(store.load().is_empty());
        let segment = journal_with(&store, &record(), Some(b"data"));
        write(&store, Part::Data, false, b"data");
        let (reader, _) = Store::inspect(dir.path()).expect("inspect");
        assert_eq!(reader.load()[ID].record, record(), "listed by a reader");
        assert_eq!(store.load()[ID].record, record(), "and by the relay");
        // Data just linked, its frame not yet written: left alone.
        fs::write(store.path("00061a2b3c4d5e70", Part::Data, false), b"x").expect("w");
        assert!(!store.load().contains_key("00061a2b3c4d5e70"));
        assert!(store.path("00061a2b3c4d5e70", Part::Data, false).exists());
        // The checkpoint writes the record file and removes the segment.
        let closed = journal::Closed {
            path: segment.clone(),
            uploads: vec![(ID.to_owned(), to_json(&record()).expect("json"))],
        };
        store.checkpoint(&[closed]).expect("checkpoint");
        assert!(!segment.exists());
        assert!(store.path(ID, Part::Record, false).exists());
        assert_eq!(store.load()[ID].record, record());
    }

    #[test]
    fn a_foreign_file_in_the_journal_is_moved_aside_and_a_torn_segment_replayed() {
        let (dir, store) = opened();
        let segment = journal_with(&store, &record(), Some(b"data"));
        let mut bytes = fs::read(&segment).expect("read");
        bytes.extend_from_slice(b"FRQ1 torn");
        fs::write(&segment, bytes).expect("write");
        write(&store, Part::Data, false, b"");
        fs::write(store.folder(JOURNAL).join("notes.txt"), b"hi").expect("foreign");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            fs::read(store.path(ID, Part::Data, false)).expect("data"),
            b"data"
        );
        assert!(dir.path().join(CORRUPT).join("notes.txt").exists());
        assert!(journal::segments(&store.folder(JOURNAL)).is_empty());
    }

    #[test]
    fn a_move_cut_short_gets_the_journal_bytes_wherever_the_data_is() {
        let (dir, store) = opened();
        journal_with(&store, &record(), Some(b"data"));
        // Killed on the way to failed/: the data moved (unsynced), the
        // record not yet.
        write(
            &store,
            Part::Record,
            false,
            &to_json(&record()).expect("json"),
        );
        write(&store, Part::Data, true, b"\0\0");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let found = store.load();
        assert!(!found[ID].failed, "where its record is");
        assert_eq!(
            fs::read(store.path(ID, Part::Data, false)).expect("data"),
            b"data"
        );
        assert!(!store.path(ID, Part::Data, true).exists());
    }

    #[test]
    fn a_journal_frame_naming_a_path_is_skipped() {
        let outside = tempfile::tempdir().expect("dir");
        let root = outside.path().join("queue");
        let store = Store::open(&root).expect("open");
        let mut hostile = record();
        // active/../../escaped: beside the queue directory.
        hostile.id = "../../escaped".to_owned();
        journal_with(&store, &hostile, Some(b"data"));
        fs::write(outside.path().join("escaped.data"), b"bait").expect("bait");
        drop(store);
        let store = Store::open(&root).expect("reopen");
        assert!(store.load().is_empty());
        let bait = fs::read(outside.path().join("escaped.data")).expect("bait");
        assert_eq!(bait, b"bait");
        assert!(!outside.path().join("escaped.json").exists());
    }

    #[test]
    fn a_damaged_segment_is_kept_aside_and_nothing_is_swept() {
        let (dir, store) = opened();
        let mut frames = Vec::new();
        for id in [ID, "00061a2b3c4d5e70"] {
            let mut one = record();
            one.id = id.to_owned();
            journal::encode(&to_json(&one).expect("json"), Some(b"data"), &mut frames);
        }
        // The first frame damaged: the second, whole, cannot be trusted
        // to be all there is.
        frames[30] ^= 0xff;
        fs::write(store.folder(JOURNAL).join("0000000000000001.log"), frames).expect("w");
        write(&store, Part::Data, false, b"data");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert!(store.load().is_empty());
        assert!(store.path(ID, Part::Data, false).exists(), "not swept");
        assert!(
            dir.path()
                .join(CORRUPT)
                .join("0000000000000001.log")
                .exists()
        );
        assert!(journal::segments(&store.folder(JOURNAL)).is_empty());
    }
}
