//! The queue's delivery loop: one thread, its own small tokio runtime,
//! running due deliveries as the [`Schedule`] picks them, recording each
//! outcome on disk, and carrying out `ftprelay queue` requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ftprelay_proto::ProcessError;
use tokio::task::JoinSet;

use super::Routes;
use super::backoff::Backoff;
use super::record::{Record, State, at_micros, micros};
use super::requests;
use super::schedule::{Job, Limits, Schedule, Start};
use super::store::{Found, Part, Store};
use super::usage::Usage;
use crate::fields::Fields;

/// What the rest of the queue tells the loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// A new upload is on disk.
    Added(Vec<Record>),
    /// A held upload was renamed (its new record is on disk) or its
    /// session ended: deliver it.
    Released(Record),
    /// A held upload was deleted before its rename.
    Forget(String),
}

/// The loop's settings.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) backoff: Backoff,
    pub(crate) limits: Limits,
    pub(crate) attempt_timeout: Duration,
    pub(crate) routes: Arc<dyn Routes>,
}

/// How often the loop looks for `ftprelay queue` requests.
const REQUEST_POLL: Duration = Duration::from_millis(250);

struct Item {
    record: Record,
    state: State,
    /// Deliveries of it under way.
    running: usize,
}

pub(crate) struct Worker {
    store: Arc<Store>,
    usage: Arc<Usage>,
    settings: Settings,
    /// By id: ids sort in the order the uploads were received (see
    /// `fields::next_id`), so the first is the oldest.
    items: BTreeMap<String, Item>,
    schedule: Schedule,
    tasks: JoinSet<(Start, Result<(), ProcessError>)>,
    aborts: HashMap<String, Vec<tokio::task::AbortHandle>>,
}

/// Runs the loop until `events` is closed, on a thread of its own.
pub(crate) fn spawn(
    store: Arc<Store>,
    usage: Arc<Usage>,
    settings: Settings,
    found: Vec<Found>,
    events: smol::channel::Receiver<Event>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("ftprelay-queue".to_owned())
        .spawn(move || {
            let mut worker = Worker {
                store,
                usage,
                settings,
                items: BTreeMap::new(),
                schedule: Schedule::default(),
                tasks: JoinSet::new(),
                aborts: HashMap::new(),
            };
            for upload in found {
                worker.restore(upload);
            }
            runtime.block_on(worker.run(events));
        })
}

impl Worker {
    async fn run(mut self, events: smol::channel::Receiver<Event>) {
        let mut poll = tokio::time::interval(REQUEST_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.start_due();
            let sleep = self
                .schedule
                .next_due()
                .map(|due| duration_until(due).min(Duration::from_secs(3600)))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.on_event(event),
                    Err(_) => break,
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok((start, result)) = joined {
                        self.finished(start, result);
                    }
                }
                () = tokio::time::sleep(sleep) => {}
                _ = poll.tick() => {
                    let store = self.store.clone();
                    requests::serve(&store, &mut self);
                }
            }
            let oldest = self
                .items
                .values()
                .next()
                .map(|item| item.record.received_us);
            self.usage.set_oldest(oldest);
        }
        // The relay is stopping: what runs is abandoned, and tried again at
        // the next start (its state says not done).
        self.tasks.shutdown().await;
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Added(records) => {
                for record in records {
                    let state = State::new(&record);
                    self.add(record, state);
                }
            }
            Event::Released(record) => {
                if let Some(item) = self.items.get_mut(&record.id) {
                    item.record = record.clone();
                    self.schedule_pending(&record.id);
                } else {
                    let state = State::new(&record);
                    self.add(record, state);
                }
            }
            Event::Forget(id) => self.drop_upload(&id),
        }
    }

    /// An upload found at start-up: failed ones are only counted; held
    /// ones (their session is gone) are delivered under the name they have.
    fn restore(&mut self, found: Found) {
        let Found {
            mut record,
            state,
            failed,
        } = found;
        self.usage.add(record.size);
        if failed {
            return;
        }
        if record.held {
            record.held = false;
            tracing::info!(
                id = record.id,
                "a held upload's session ended with the last run; delivering it under the name it has"
            );
            if let Err(error) = self.store.rewrite_record(&record) {
                tracing::warn!(id = record.id, %error, "cannot release a held upload");
            }
        }
        self.add(record, state);
    }

    fn add(&mut self, record: Record, state: State) {
        let id = record.id.clone();
        self.items.insert(
            id.clone(),
            Item {
                record,
                state,
                running: 0,
            },
        );
        self.schedule_pending(&id);
        // Nothing left to try (a run killed while moving it to failed/, or
        // before removing it): ended now.
        if self
            .items
            .get(&id)
            .is_some_and(|item| !item.record.held && item.state.settled())
        {
            self.settle(&id);
        }
    }

    /// Schedules every destination of `id` neither done nor given up on.
    fn schedule_pending(&mut self, id: &str) {
        let Some(item) = self.items.get(id) else {
            return;
        };
        if item.record.held {
            return;
        }
        for (index, progress) in item.state.destinations.iter().enumerate() {
            if !progress.done && !progress.failed {
                let job = Job {
                    id: id.to_owned(),
                    index,
                };
                let destination = &item.record.destinations[index];
                self.schedule
                    .add(&item.record.user, job, destination, progress.next_us);
            }
        }
    }

    fn start_due(&mut self) {
        for start in self
            .schedule
            .start(micros(SystemTime::now()), self.settings.limits)
        {
            self.launch(start);
        }
    }

    fn launch(&mut self, start: Start) {
        let Some(item) = self.items.get_mut(&start.job.id) else {
            self.schedule.finished(&start.destination);
            return;
        };
        item.running += 1;
        let record = item.record.clone();
        let routes = self.settings.routes.clone();
        let timeout = self.settings.attempt_timeout;
        let data = self.store.path(&record.id, Part::Data, false);
        let abort = self.tasks.spawn(async move {
            let result = attempt(&*routes, &record, start.job.index, data, timeout).await;
            (start, result)
        });
        self.aborts
            .entry(item.record.id.clone())
            .or_default()
            .push(abort);
    }

    /// A delivery ended: recorded, then the upload removed when every
    /// destination is done, moved to `failed/` when none is left to try.
    fn finished(&mut self, start: Start, result: Result<(), ProcessError>) {
        self.schedule.finished(&start.destination);
        let id = start.job.id.clone();
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        item.running -= 1;
        let now = SystemTime::now();
        let backoff = self.settings.backoff;
        let Some(progress) = item.state.destinations.get_mut(start.job.index) else {
            return;
        };
        progress.attempts = progress.attempts.saturating_add(1);
        // Logged once its state is on disk, so that what the log says,
        // `ftprelay queue list` shows.
        let mut retry = None;
        match result {
            Ok(()) => {
                tracing::info!(
                    id,
                    destination = start.destination,
                    attempts = progress.attempts,
                    "delivered"
                );
                progress.done = true;
                progress.last_error = None;
            }
            Err(error) if error.is_permanent() => {
                tracing::error!(
                    id,
                    destination = start.destination,
                    reason = error.reason(),
                    "delivery refused for good"
                );
                progress.failed = true;
                progress.last_error = Some(error.reason().to_owned());
            }
            Err(error) => {
                let next = now + backoff.delay(progress.attempts, random());
                let deadline = at_micros(item.state.since_us) + backoff.max_age;
                progress.last_error = Some(error.reason().to_owned());
                if next > deadline {
                    tracing::error!(
                        id,
                        destination = start.destination,
                        attempts = progress.attempts,
                        reason = error.reason(),
                        "delivery given up on: the upload is older than the queue's maximum age"
                    );
                    progress.failed = true;
                } else {
                    retry = Some((
                        progress.attempts,
                        error.reason().to_owned(),
                        next.duration_since(now).unwrap_or_default().as_secs(),
                    ));
                    progress.next_us = micros(next);
                    let (user, name, due) = (
                        item.record.user.clone(),
                        start.destination.clone(),
                        progress.next_us,
                    );
                    self.schedule.add(&user, start.job.clone(), &name, due);
                }
            }
        }
        self.settle(&id);
        if let Some((attempts, reason, retry_in_s)) = retry {
            tracing::warn!(
                id,
                destination = start.destination,
                attempts,
                reason,
                retry_in_s,
                "delivery failed; will retry"
            );
        }
    }

    /// Writes where upload `id` stands, and ends it if nothing is left.
    fn settle(&mut self, id: &str) {
        let Some(item) = self.items.get(id) else {
            return;
        };
        if !item.state.settled() || item.running > 0 {
            if let Err(error) = self.store.write_state(id, &item.state, false) {
                tracing::warn!(id, %error, "cannot record a delivery's outcome; it may be repeated");
            }
            return;
        }
        let Some(mut item) = self.items.remove(id) else {
            return;
        };
        self.aborts.remove(id);
        if item.state.delivered() {
            if let Err(error) = self.store.remove(id, false) {
                tracing::warn!(id, %error, "cannot remove a delivered upload from the queue");
            }
            self.usage.remove(item.record.size);
            return;
        }
        let reasons: Vec<String> = item
            .record
            .destinations
            .iter()
            .zip(&item.state.destinations)
            .filter(|(_, p)| p.failed)
            .map(|(name, p)| format!("{name}: {}", p.last_error.as_deref().unwrap_or("failed")))
            .collect();
        let failure = reasons.join("; ");
        item.state.failure = Some(failure.clone());
        if let Err(error) = self.store.move_upload(&item.record, &item.state, true) {
            tracing::error!(id, %error, reason = failure, "cannot move an upload to failed/");
            return;
        }
        tracing::error!(id, user = %String::from_utf8_lossy(&item.record.user), name = %String::from_utf8_lossy(&item.record.file_name), reason = failure, "upload moved to failed/");
    }

    /// Removes upload `id`: its deliveries cancelled, its files deleted.
    pub(crate) fn drop_upload(&mut self, id: &str) {
        for abort in self.aborts.remove(id).unwrap_or_default() {
            abort.abort();
        }
        if let Some(item) = self.items.remove(id) {
            self.schedule.remove_upload(&item.record.user, id);
            self.usage.remove(item.record.size);
            if let Err(error) = self.store.remove(id, false) {
                tracing::warn!(id, %error, "cannot remove a dropped upload");
            }
        }
    }

    /// Makes upload `id` (every upload, if `None`) due now.
    pub(crate) fn hurry(&mut self, id: Option<&str>) {
        for (key, item) in &mut self.items {
            if id.is_none_or(|id| id == key) {
                for progress in &mut item.state.destinations {
                    progress.next_us = 0;
                }
            }
        }
        self.schedule.hurry(id);
    }

    /// Whether upload `id` is active here.
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.items.contains_key(id)
    }

    /// Takes a failed upload just moved back to `active/`.
    pub(crate) fn readmit(&mut self, found: Found) {
        let Found { record, state, .. } = found;
        self.add(record, state);
    }

    /// The usage counters, for a dropped failed upload.
    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }
}

/// One attempt at destination `index` of `record`.
async fn attempt(
    routes: &dyn Routes,
    record: &Record,
    index: usize,
    data: std::path::PathBuf,
    timeout: Duration,
) -> Result<(), ProcessError> {
    let name = &record.destinations[index];
    let Some(destinations) = routes.destinations(&record.user) else {
        return Err(ProcessError::rejected(format!(
            "the user {} is no longer configured",
            String::from_utf8_lossy(&record.user)
        )));
    };
    let destination = destinations
        .get(index)
        .filter(|d| d.to_string() == *name)
        .or_else(|| destinations.iter().find(|d| d.to_string() == *name));
    let Some(destination) = destination else {
        return Err(ProcessError::rejected(format!(
            "{name} is no longer a destination of {}",
            String::from_utf8_lossy(&record.user)
        )));
    };
    let upload = record.upload(data);
    let fields = Fields::restored(&upload, record.received(), &record.id)
        .map_err(|e| ProcessError::rejected(e.to_string()))?;
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(timeout, destination.deliver(&upload, &fields)).await {
        Ok(result) => result,
        Err(_) => Err(ProcessError::transient(format!(
            "no answer within {} s",
            timeout.as_secs()
        ))),
    };
    destinations.observe(name, result.as_ref().map(|_| ()), started.elapsed());
    result
}

fn duration_until(due_us: u64) -> Duration {
    at_micros(due_us)
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

/// A random number for the back-off's jitter.
fn random() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(micros(SystemTime::now()));
    hasher.finish()
}
