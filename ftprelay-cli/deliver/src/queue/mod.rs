//! Store and forward: a durable queue in front of the destinations, so
//! that an outage of a destination loses nothing.
//!
//! The device hears `226` once its file and everything needed to deliver
//! it (user, destinations, names, time, a unique id) are on disk: in the
//! queue's journal, synced with the other uploads of its batch (see
//! `journal.rs`), its own files in `active/`. Then each destination
//! is attempted in the background, on its own: one that succeeded is not
//! repeated when another fails. A failed attempt is retried with
//! exponential back-off ([`Backoff`]) until the upload is too old; a
//! permanent failure, or too old, moves it to `failed/` with the reason.
//! Delivery is at least once: every attempt of an upload carries the
//! same `{id}` and `{time}`, so destinations can make a repeat harmless.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ftprelay_deliver::{Destinations, Directory, Queue, QueueSettings, Routes};
//!
//! struct Everyone(Destinations);
//! impl Routes for Everyone {
//!     fn destinations(&self, _user: &[u8]) -> Option<Destinations> {
//!         Some(self.0.clone())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let archive = Destinations::new(vec![Box::new(Directory::parse("/srv/scans/{user}")?)]);
//! let queue = Queue::open(QueueSettings::new("/var/spool/ftprelay"), Arc::new(Everyone(archive)))?;
//! // In a `FileProcessor`: `queue.enqueue(upload, user's destinations).await`.
//! # let _ = queue;
//! # Ok(())
//! # }
//! ```

mod backoff;
mod commit;
mod journal;
mod record;
mod requests;
mod schedule;
mod store;
mod usage;
mod worker;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ftprelay_proto::{ProcessError, Upload};

pub use backoff::Backoff;
pub use requests::{Listed, Request};
pub use schedule::Limits;
pub use usage::Capacity;

use crate::destinations::Destinations;
use crate::fields::Fields;
use commit::{Committer, Job};
use record::Record;
use store::Store;
use usage::Usage;
use worker::Event;

/// Where the queue finds the destinations of a user: at every attempt, so
/// that an upload queued before a restart goes where the configuration
/// sends it now (a destination is recognised by its name, as in the log).
pub trait Routes: Send + Sync + 'static {
    /// The destinations of `user` (the login name, as sent), or `None` if
    /// there is no such user any more (its uploads then fail).
    fn destinations(&self, user: &[u8]) -> Option<Destinations>;
}

/// How a queue works. [`QueueSettings::new`] has the defaults.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// The queue directory (created if missing; one relay at a time).
    pub dir: PathBuf,
    /// When failed deliveries are tried again, and for how long.
    pub backoff: Backoff,
    /// How many deliveries run at once.
    pub limits: Limits,
    /// How full the queue may get; `None`: from the free space of its file
    /// system ([`Capacity::for_dir`]).
    pub capacity: Option<Capacity>,
    /// How long one delivery attempt may take. Ten minutes.
    pub attempt_timeout: Duration,
    /// The most uploads made durable by one journal sync. 256; 1 syncs
    /// each upload on its own (for measuring what group commit saves).
    pub max_batch: usize,
}

impl QueueSettings {
    /// The defaults, for a queue in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            backoff: Backoff::default(),
            limits: Limits::default(),
            capacity: None,
            attempt_timeout: Duration::from_secs(600),
            max_batch: 256,
        }
    }
}

/// Why a queue cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("queue {dir}: {error}")]
pub struct QueueError {
    dir: String,
    #[source]
    error: io::Error,
}

/// A durable queue of uploads and the loop delivering them; cloning
/// shares it. Dropping the last clone stops the loop (what it was
/// delivering is tried again at the next start).
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    usage: Arc<Usage>,
    committer: Committer,
    events: smol::channel::Sender<Event>,
    /// Held uploads by spool path: their id in the queue.
    held: Mutex<HashMap<PathBuf, Record>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({})", self.shared.store.root().display())
    }
}

impl Queue {
    /// Opens the queue of `settings` (locked: a second relay on it is
    /// refused), takes up the uploads a previous run left, and starts
    /// delivering them with `routes`.
    pub fn open(settings: QueueSettings, routes: Arc<dyn Routes>) -> Result<Self, QueueError> {
        let fail = |error: io::Error| QueueError {
            dir: settings.dir.display().to_string(),
            error,
        };
        let store = Arc::new(Store::open(&settings.dir).map_err(fail)?);
        let found = store.load();
        if let Some(last) = found.keys().next_back() {
            crate::fields::ids_after(last);
        }
        let usage = Arc::new(Usage::new());
        let used: u64 = found.values().map(|f| f.record.size).sum();
        let capacity = match settings.capacity {
            Some(capacity) => capacity,
            None => Capacity::for_dir(&settings.dir, used).map_err(fail)?,
        };
        usage.set_capacity(capacity);
        let (failed, waiting) = found.values().partition::<Vec<_>, _>(|f| f.failed);
        tracing::info!(queue = %settings.dir.display(), waiting = waiting.len(), failed = failed.len(), max_uploads = capacity.max_files, max_bytes = capacity.max_bytes, "queue open");
        let (events, receiver) = smol::channel::unbounded();
        let committer = Committer::start(
            store.clone(),
            usage.clone(),
            settings.max_batch,
            events.clone(),
        )
        .map_err(fail)?;
        let worker_settings = worker::Settings {
            backoff: settings.backoff,
            limits: settings.limits,
            attempt_timeout: settings.attempt_timeout,
            routes,
        };
        worker::spawn(
            store.clone(),
            usage.clone(),
            worker_settings,
            found.into_values().collect(),
            receiver,
        )
        .map_err(fail)?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                usage,
                committer,
                events,
                held: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Whether one more upload may start now: `Err` (`452`) when the queue
    /// is full.
    pub fn admit(&self) -> Result<(), ProcessError> {
        self.shared.usage.admit()
    }

    /// Queues `upload` for `destinations`: returns once it is durably in
    /// the queue (then the device may be told `226`). An upload kept by
    /// [`Queue::hold`] is released instead, under its new name.
    pub async fn enqueue(
        &self,
        upload: &Upload,
        destinations: &Destinations,
    ) -> Result<(), ProcessError> {
        let held = self.held().remove(upload.path());
        match held {
            Some(record) => self.release(record, upload).await,
            None => self.store(upload, destinations, false).await.map(drop),
        }
    }

    /// Keeps `upload` (a temporary name waiting for its rename) durably,
    /// not delivered until [`Queue::enqueue`] releases it or
    /// [`Queue::forget`] drops it.
    pub async fn hold(
        &self,
        upload: &Upload,
        destinations: &Destinations,
    ) -> Result<(), ProcessError> {
        let record = self.store(upload, destinations, true).await?;
        self.held().insert(upload.path().to_owned(), record);
        Ok(())
    }

    /// Drops the held `upload` (deleted or replaced before its rename).
    pub fn forget(&self, upload: &Upload) {
        if let Some(record) = self.held().remove(upload.path()) {
            let _ = self.shared.events.try_send(Event::Forget(record.id));
        }
    }

    /// Uploads refused because the queue was full, since it opened.
    pub fn refused(&self) -> u64 {
        self.shared.usage.refused()
    }

    /// Uploads and bytes in the queue now (failed ones too).
    pub fn usage(&self) -> (u64, u64) {
        (self.shared.usage.files(), self.shared.usage.bytes())
    }

    /// Whether the queue is full now: the next upload would be refused
    /// (`452`). Asking refuses nothing.
    pub fn is_full(&self) -> bool {
        self.shared.usage.is_full()
    }

    /// When the oldest upload still waiting for delivery (held ones too;
    /// not the failed ones) was received; `None` when none waits. Updated
    /// by the delivery loop as it goes, so a moment behind.
    pub fn oldest(&self) -> Option<SystemTime> {
        let micros = self.shared.usage.oldest()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_micros(micros))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Record>> {
        self.shared
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn release(&self, mut record: Record, upload: &Upload) -> Result<(), ProcessError> {
        if record.destinations.is_empty() {
            // Held for nowhere: nothing was stored.
            return Ok(());
        }
        record.name = upload.name().to_vec();
        record.file_name = upload.file_name().to_vec();
        record.path = upload.remote_path().to_vec();
        record.held = false;
        let store = self.shared.store.clone();
        let written = record.clone();
        smol::unblock(move || store.rewrite_record(&written))
            .await
            .map_err(|e| stored_error(&e))?;
        let _ = self.shared.events.try_send(Event::Released(record));
        Ok(())
    }

    async fn store(
        &self,
        upload: &Upload,
        destinations: &Destinations,
        held: bool,
    ) -> Result<Record, ProcessError> {
        self.shared.usage.reserve(upload.size())?;
        let now = SystemTime::now();
        let fields = Fields::new(upload, now);
        let names = destinations.iter().map(|d| d.to_string()).collect();
        let mut record = Record::new(upload, now, fields.id(), names);
        record.held = held;
        if record.destinations.is_empty() {
            // Nowhere to go: accepted, as a relay without a queue does.
            self.shared.usage.remove(upload.size());
            return Ok(record);
        }
        let (done, outcome) = smol::channel::bounded(1);
        let job = Job {
            record: record.clone(),
            spool: upload.path().to_owned(),
            done,
        };
        // A failed commit is undone by the committer (even when this
        // session is gone by then).
        let committed = match self.shared.committer.commit(job) {
            Ok(()) => outcome
                .recv()
                .await
                .unwrap_or_else(|_| Err(io::Error::other("the committer stopped"))),
            Err(error) => {
                self.shared.usage.remove(upload.size());
                Err(error)
            }
        };
        if let Err(error) = committed {
            tracing::error!(id = record.id, %error, "cannot queue an upload");
            return Err(stored_error(&error));
        }
        tracing::info!(id = record.id, user = %String::from_utf8_lossy(&record.user), name = %String::from_utf8_lossy(&record.file_name), size = record.size, held, "queued");
        Ok(record)
    }
}

fn stored_error(error: &io::Error) -> ProcessError {
    let full = matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() || code == rustix::io::Errno::DQUOT.raw_os_error()
    );
    let reason = format!("cannot queue the upload: {error}");
    if full {
        ProcessError::storage_full(reason)
    } else {
        ProcessError::transient(reason)
    }
}

/// The uploads in the queue at `dir`, oldest first: `ftprelay queue list`.
pub fn list(dir: &Path) -> io::Result<Vec<Listed>> {
    Ok(requests::list(dir)?
        .into_iter()
        .map(|(listed, _, _)| listed)
        .collect())
}

/// Everything the queue at `dir` holds of upload `id`, as JSON: `ftprelay
/// queue show`.
pub fn show(dir: &Path, id: &str) -> io::Result<String> {
    let (listed, record, state) = requests::list(dir)?
        .into_iter()
        .find(|(listed, _, _)| listed.id == id)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no upload {id} in the queue"),
            )
        })?;
    let failed = listed.status == "failed";
    let data = requests::data_path(dir, id, failed);
    let value = serde_json::json!({
        "status": listed.status,
        "data": data.display().to_string(),
        "record": record,
        "state": state,
    });
    serde_json::to_string_pretty(&value).map_err(io::Error::other)
}

/// Carries out `request` on the queue at `dir`, through the relay that
/// runs on it if one does: `ftprelay queue retry|drop`. One line of
/// answer per upload.
pub fn request(dir: &Path, request: &Request) -> io::Result<Vec<String>> {
    requests::carry_out(dir, request)
}
