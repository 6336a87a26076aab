//! Group commit: uploads arriving together share one sync.
//!
//! One committer thread takes every upload waiting, stages each (its data
//! linked into `active/`, not synced; its record and, for a small upload,
//! its bytes read for the journal), appends them to the journal as one
//! write, and syncs `active/` (their names) and the journal (their
//! contents) once for all of them; only then is each session told, and
//! its device answered `226`. Staging here rather than on the session's
//! thread saves two thread switches an upload, which under load cost
//! more than the disk. While
//! the disk syncs one batch the next one gathers, so under load an upload
//! costs a small fraction of a sync. A closed journal segment is
//! checkpointed on another thread (`Store::checkpoint`).

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

use super::journal::{self, Closed, Journal};
use super::record::Record;
use super::store::{ACTIVE, JOURNAL, Part, Store, sync_dir};
use super::usage::Usage;
use super::worker::Event;

/// One upload to commit.
#[derive(Debug)]
pub(crate) struct Job {
    /// The upload, for the delivery loop once it is durable.
    pub(crate) record: Record,
    /// Its complete spool file.
    pub(crate) spool: PathBuf,
    /// Told the outcome.
    pub(crate) done: smol::channel::Sender<io::Result<()>>,
}

/// A job staged: what the journal gets of it.
struct Staged {
    /// Its record as written to the journal.
    json: Vec<u8>,
    /// Its bytes, or its data file when too big for the journal.
    data: StagedData,
}

/// Where the bytes of a staged upload are made durable.
#[derive(Debug)]
enum StagedData {
    /// In the journal, with the record.
    Inline(Vec<u8>),
    /// In its own data file, synced before the journal is.
    File(File),
}

/// The committer: a thread, stopped when every sender is gone.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    sender: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the committer of `store`, committing at most `max_batch`
    /// uploads per sync (1: a sync per upload, the baseline the benchmark
    /// compares with). Each committed upload is announced on `events` (by
    /// the committer, so that one whose session gave up waiting is
    /// delivered all the same).
    pub(crate) fn start(
        store: Arc<Store>,
        usage: Arc<Usage>,
        max_batch: usize,
        events: smol::channel::Sender<Event>,
    ) -> io::Result<Self> {
        let journal = Journal::open(&store.folder(JOURNAL))?;
        let (checkpoints, closed) = mpsc::channel::<Closed>();
        let checkpointer = store.clone();
        std::thread::Builder::new()
            .name("ftprelay-queue-checkpoint".to_owned())
            .spawn(move || checkpoints_loop(&checkpointer, &closed))?;
        let (sender, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ftprelay-queue-commit".to_owned())
            .spawn(move || {
                let mut committer = Run {
                    active: store.folder(ACTIVE),
                    store,
                    usage,
                    journal,
                    checkpoints,
                };
                committer.run(&receiver, max_batch.max(1), &events);
            })?;
        Ok(Self { sender })
    }

    /// Commits `job`; its `done` is told when it is durable.
    pub(crate) fn commit(&self, job: Job) -> io::Result<()> {
        self.sender
            .send(job)
            .map_err(|_| io::Error::other("the queue's committer stopped"))
    }
}

struct Run {
    store: Arc<Store>,
    usage: Arc<Usage>,
    active: PathBuf,
    journal: Journal,
    checkpoints: mpsc::Sender<Closed>,
}

impl Run {
    fn run(
        &mut self,
        receiver: &mpsc::Receiver<Job>,
        max_batch: usize,
        events: &smol::channel::Sender<Event>,
    ) {
        loop {
            let first = match receiver.recv_timeout(journal::ROTATE_AGE) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.rotate_if(|journal| !journal.is_empty());
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut bytes = journaled_bytes(&first);
            let mut batch = vec![first];
            while batch.len() < max_batch && bytes < MAX_BATCH_BYTES {
                match receiver.try_recv() {
                    Ok(next) => {
                        bytes += journaled_bytes(&next);
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            let mut frames = Batch::default();
            let mut jobs = Vec::with_capacity(batch.len());
            for job in batch {
                match stage(&self.store, &job) {
                    Ok(staged) => {
                        frames.add(&job.record.id, staged);
                        jobs.push(job);
                    }
                    Err(error) => self.undo(job, error),
                }
            }
            if jobs.is_empty() {
                continue;
            }
            let outcome = self.commit(frames);
            if outcome.is_ok() {
                let records = jobs.iter().map(|job| job.record.clone()).collect();
                let _ = events.try_send(Event::Added(records));
            }
            for job in jobs {
                match &outcome {
                    Ok(()) => {
                        let _ = job.done.try_send(Ok(()));
                    }
                    Err(error) => {
                        self.undo(job, io::Error::new(error.kind(), error.to_string()));
                    }
                }
            }
            self.rotate_if(Journal::full);
        }
        // Stopping: what is committed is checkpointed, so that a clean
        // stop leaves no journal to replay.
        self.rotate_if(|journal| !journal.is_empty());
    }

    /// Makes `batch` durable: the big uploads' data synced, the names in
    /// `active/` synced, then the journal's frames of all of them.
    fn commit(&mut self, batch: Batch) -> io::Result<()> {
        for file in &batch.files {
            file.sync_all()?;
        }
        sync_dir(&self.active)?;
        self.journal.append(&batch.frames, batch.uploads)
    }

    /// `job` was not committed: its data and its room in the queue go.
    fn undo(&self, job: Job, error: io::Error) {
        let _ = fs::remove_file(self.store.path(&job.record.id, Part::Data, false));
        self.usage.remove(job.record.size);
        let _ = job.done.try_send(Err(error));
    }

    fn rotate_if(&mut self, due: impl Fn(&Journal) -> bool) {
        if !due(&self.journal) {
            return;
        }
        match self.journal.rotate() {
            Ok(closed) => {
                let _ = self.checkpoints.send(closed);
            }
            Err(error) => {
                tracing::error!(%error, "cannot start a new queue journal segment");
            }
        }
    }
}

/// Puts the data of `job` into `active/` (unsynced) and reads what the
/// journal needs.
fn stage(store: &Store, job: &Job) -> io::Result<Staged> {
    let record = &job.record;
    let data = store.path(&record.id, Part::Data, false);
    // The spool file is complete and never written again: a second name
    // for it costs nothing. Across file systems, a copy.
    if let Err(error) = fs::hard_link(&job.spool, &data) {
        let _ = fs::remove_file(&data);
        if error.kind() != io::ErrorKind::AlreadyExists || fs::hard_link(&job.spool, &data).is_err()
        {
            let mut from = File::open(&job.spool)?;
            let mut to = super::store::create(&data)?;
            io::copy(&mut from, &mut to)?;
        }
    }
    let data = if record.size <= journal::INLINE_MAX {
        let mut bytes = Vec::with_capacity(record.size as usize);
        File::open(&data)?
            .take(journal::INLINE_MAX + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 != record.size {
            return Err(io::Error::other(format!(
                "the spool file holds {} bytes, not the {} received",
                bytes.len(),
                record.size
            )));
        }
        StagedData::Inline(bytes)
    } else {
        StagedData::File(File::open(&data)?)
    };
    Ok(Staged {
        json: super::store::to_json(record)?,
        data,
    })
}

/// The checkpoint thread: every segment closed meanwhile is checkpointed
/// with one flush; a failed checkpoint is tried again a little later (and
/// what it could not do, the next start replays).
fn checkpoints_loop(store: &Store, closed: &mpsc::Receiver<Closed>) {
    let mut pending: Vec<Closed> = Vec::new();
    let mut stopping = false;
    loop {
        if pending.is_empty() {
            match closed.recv() {
                Ok(segment) => pending.push(segment),
                Err(_) => return,
            }
        } else if !stopping {
            match closed.recv_timeout(CHECKPOINT_RETRY) {
                Ok(segment) => pending.push(segment),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => stopping = true,
            }
        }
        pending.extend(closed.try_iter());
        match store.checkpoint(&pending) {
            Ok(()) => pending.clear(),
            Err(error) => {
                tracing::error!(%error, segments = pending.len(), "cannot checkpoint the queue journal; trying again");
                if stopping {
                    return;
                }
            }
        }
    }
}

/// How long a failed checkpoint waits before it is tried again.
const CHECKPOINT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// A batch gathers no more uploads once its journal bytes reach this
/// (a bound on the committer's memory: 256 uploads of 1 MiB would be
/// 256 MiB).
const MAX_BATCH_BYTES: u64 = 16 << 20;

/// The bytes `job` puts into the journal.
fn journaled_bytes(job: &Job) -> u64 {
    if job.record.size <= journal::INLINE_MAX {
        job.record.size
    } else {
        0
    }
}

/// The frames of one batch, and the data files synced on their own.
#[derive(Default)]
struct Batch {
    frames: Vec<u8>,
    uploads: Vec<(String, Vec<u8>)>,
    files: Vec<File>,
}

impl Batch {
    fn add(&mut self, id: &str, staged: Staged) {
        match staged.data {
            StagedData::Inline(bytes) => {
                journal::encode(&staged.json, Some(&bytes), &mut self.frames)
            }
            StagedData::File(file) => {
                journal::encode(&staged.json, None, &mut self.frames);
                self.files.push(file);
            }
        }
        self.uploads.push((id.to_owned(), staged.json));
    }
}
