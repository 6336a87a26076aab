//! `ftprelay queue retry|drop`: carried out by the running relay, which
//! owns the queue, or, when none runs, by the command itself under the
//! queue's lock. Either way by the same code.
//!
//! A command for a running relay is a file `requests/NAME.req` holding
//! one line (`retry ID`, `retry`, `drop ID`); the relay answers in
//! `requests/NAME.done` and removes the request.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::record::{Record, State, is_id, micros};
use super::store::{Found, Part, REQUESTS, Store, write_synced};
use super::worker::Worker;

/// What `ftprelay queue` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Try these uploads (every upload, if empty) again now; failed ones
    /// go back to `active/` with their time in the queue started anew.
    Retry(Vec<String>),
    /// Remove these uploads, delivered or not.
    Drop(Vec<String>),
}

impl Request {
    fn lines(&self) -> Vec<String> {
        match self {
            Self::Retry(ids) if ids.is_empty() => vec!["retry".to_owned()],
            Self::Retry(ids) => ids.iter().map(|id| format!("retry {id}")).collect(),
            Self::Drop(ids) => ids.iter().map(|id| format!("drop {id}")).collect(),
        }
    }
}

/// How long a command waits for the running relay to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// Carries out `request` on the queue at `root`; one line per upload.
pub(crate) fn carry_out(root: &Path, request: &Request) -> io::Result<Vec<String>> {
    for id in match request {
        Request::Retry(ids) | Request::Drop(ids) => ids,
    } {
        if !is_id(id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{id:?} is not an upload id (16 hex digits, as `ftprelay queue list` shows)"
                ),
            ));
        }
    }
    let (store, locked) = Store::inspect(root)?;
    if locked {
        return Ok(request
            .lines()
            .iter()
            .map(|line| apply(&store, None, line))
            .collect());
    }
    ask_running_relay(&store, request)
}

fn ask_running_relay(store: &Store, request: &Request) -> io::Result<Vec<String>> {
    let folder = store.folder(REQUESTS);
    let name = format!("{}-{}", std::process::id(), micros(SystemTime::now()));
    let staged = folder.join(format!(".{name}"));
    let asked = folder.join(format!("{name}.req"));
    let answer = folder.join(format!("{name}.done"));
    write_synced(&staged, request.lines().join("\n").as_bytes())?;
    fs::rename(&staged, &asked)?;
    let started = Instant::now();
    while started.elapsed() < ANSWER_TIMEOUT {
        if let Ok(text) = fs::read_to_string(&answer) {
            let _ = fs::remove_file(&answer);
            return Ok(text.lines().map(str::to_owned).collect());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = fs::remove_file(&asked);
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the relay using {} did not answer within {} s",
            store.root().display(),
            ANSWER_TIMEOUT.as_secs()
        ),
    ))
}

/// Serves the requests waiting in `requests/` (the running relay).
pub(crate) fn serve(store: &Store, worker: &mut Worker) {
    let folder = store.folder(REQUESTS);
    let Ok(entries) = fs::read_dir(&folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "req") {
            continue;
        }
        let text = crate::small_file::read(&path).unwrap_or_default();
        let answers: Vec<String> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .take(100_000)
            .map(|line| apply(store, Some(worker), line))
            .collect();
        let _ = fs::remove_file(&path);
        let done = path.with_extension("done");
        if let Err(error) = fs::write(&done, answers.join("\n") + "\n") {
            tracing::warn!(path = %done.display(), %error, "cannot answer a queue request");
        }
    }
}

/// Carries out one request line; its answer.
fn apply(store: &Store, mut worker: Option<&mut Worker>, line: &str) -> String {
    let (verb, id) = line.split_once(' ').unwrap_or((line, ""));
    let id = id.trim();
    if !id.is_empty() && !is_id(id) {
        return format!("{id}: not an upload id");
    }
    let outcome = match (verb, id) {
        ("retry", "") => retry_all(store, worker),
        ("retry", id) => retry(store, worker.as_deref_mut(), id),
        ("drop", id) if !id.is_empty() => drop(store, worker, id),
        _ => Err(format!("unknown request {line:?}")),
    };
    match outcome {
        Ok(done) => done,
        Err(error) => format!("{id}: {error}"),
    }
}

fn retry_all(store: &Store, mut worker: Option<&mut Worker>) -> Result<String, String> {
    let mut count = 0;
    for (id, found) in store.load() {
        // A running relay hurries all its active uploads at once, below.
        let hurried_below = worker.is_some() && !found.failed;
        if hurried_below || retry_found(store, worker.as_deref_mut(), &id, found).is_ok() {
            count += 1;
        }
    }
    if let Some(worker) = worker {
        worker.hurry(None);
    }
    Ok(format!("{count} uploads to be tried again now"))
}

fn retry(store: &Store, worker: Option<&mut Worker>, id: &str) -> Result<String, String> {
    let found = store.load_one(id).ok_or("no such upload in the queue")?;
    retry_found(store, worker, id, found)
}

fn retry_found(
    store: &Store,
    worker: Option<&mut Worker>,
    id: &str,
    found: Found,
) -> Result<String, String> {
    if found.failed {
        let mut state = found.state;
        state.failure = None;
        state.since_us = micros(SystemTime::now());
        for progress in &mut state.destinations {
            if progress.failed {
                progress.failed = false;
                progress.attempts = 0;
            }
            progress.next_us = 0;
        }
        store
            .move_upload(&found.record, &state, false)
            .map_err(|e| format!("cannot move it back from failed/: {e}"))?;
        if let Some(worker) = worker {
            worker.readmit(Found {
                record: found.record,
                state,
                failed: false,
            });
        }
        return Ok(format!("{id}: back from failed/, to be tried now"));
    }
    match worker {
        Some(worker) => worker.hurry(Some(id)),
        None => {
            let mut state = found.state;
            for progress in &mut state.destinations {
                progress.next_us = 0;
            }
            store
                .write_state(id, &state, false)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(format!("{id}: to be tried now"))
}

fn drop(store: &Store, mut worker: Option<&mut Worker>, id: &str) -> Result<String, String> {
    if let Some(worker) = worker.as_deref_mut()
        && worker.holds(id)
    {
        worker.drop_upload(id);
        return Ok(format!("{id}: dropped"));
    }
    let found = store.load_one(id).ok_or("no such upload in the queue")?;
    store
        .remove(id, found.failed)
        .map_err(|e| format!("cannot remove it: {e}"))?;
    if let Some(worker) = worker {
        worker.usage().remove(found.record.size);
    }
    Ok(format!("{id}: dropped"))
}

/// One line of `ftprelay queue list`.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The upload's id.
    pub id: String,
    /// Waiting, held or failed.
    pub status: &'static str,
    /// The user, for display.
    pub user: String,
    /// The file name, for display.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// When it was received.
    pub received: SystemTime,
    /// Attempts so far, over all destinations.
    pub attempts: u32,
    /// The next attempt, if one is due.
    pub next: Option<SystemTime>,
    /// The last error of any destination.
    pub last_error: Option<String>,
}

/// The uploads in the queue at `root`, oldest first.
pub(crate) fn list(root: &Path) -> io::Result<Vec<(Listed, Record, State)>> {
    let (store, _) = Store::inspect(root)?;
    Ok(store
        .load()
        .into_values()
        .map(|found| {
            let Found {
                record,
                state,
                failed,
            } = found;
            let pending = state.destinations.iter().filter(|p| !p.done && !p.failed);
            let next = pending
                .map(|p| p.next_us)
                .min()
                .filter(|_| !failed && !record.held)
                .map(|us| super::record::at_micros(us).max(record.received()));
            let listed = Listed {
                id: record.id.clone(),
                status: if failed {
                    "failed"
                } else if record.held {
                    "held"
                } else {
                    "waiting"
                },
                user: String::from_utf8_lossy(&record.user).into_owned(),
                name: String::from_utf8_lossy(&record.file_name).into_owned(),
                size: record.size,
                received: record.received(),
                attempts: state.destinations.iter().map(|p| p.attempts).sum(),
                next,
                last_error: state
                    .failure
                    .clone()
                    .or_else(|| state.destinations.iter().find_map(|p| p.last_error.clone())),
            };
            (listed, record, state)
        })
        .collect())
}

/// The path of the data of upload `id` (for `ftprelay queue show`).
pub(crate) fn data_path(root: &Path, id: &str, failed: bool) -> std::path::PathBuf {
    let store = Store::inspect(root).map(|(store, _)| store);
    match store {
        Ok(store) => store.path(id, Part::Data, failed),
        Err(_) => root.join(id),
    }
}
