//! Store and forward under load: the relay on tokio receiving into a
//! queue (`--queue`) on the machine's real disk, against the same relay
//! delivering before it answers (no queue), against the queue syncing
//! each upload alone (`--queue-batch 1`), and against the baseline: a
//! plain TCP-to-file copy that syncs each file and its directory before
//! it answers (what a server durable per file costs at best).
//!
//! ```text
//! cargo run --release -p ftprelay-benches --bin loadgen -- queue [DIR]
//! ```
//!
//! DIR is where the queue and the spool live (default `/var/tmp`): it
//! must be a real disk, since the cost measured is the disk's sync. The
//! one destination discards, so that the figure is the queue's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftprelay_deliver::{Destinations, Discard as DiscardDestination, Queue, QueueSettings, Routes};
use ftprelay_tokio::proto::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, Upload,
};

use crate::servers::Role;
use crate::{Load, run_against};

/// How the relay under test treats an upload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Delivered (discarded) before `226`: no queue.
    Direct,
    /// Queued, group commit (the default batch).
    Queue,
    /// Queued, each upload synced alone.
    QueueBatch1,
    /// Delivered into a directory (`--dir`: written beside, renamed in)
    /// before `226`.
    Dir,
}

impl Mode {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Mode::Direct => "no queue",
            Mode::Queue => "--queue",
            Mode::QueueBatch1 => "batch 1",
            Mode::Dir => "--dir",
        }
    }

    /// How the delivery scenario names it.
    pub(crate) fn delivery_label(self) -> &'static str {
        match self {
            Mode::Direct => "--discard",
            other => other.label(),
        }
    }

    /// Whether uploads go through a queue (drained after the load).
    pub(crate) fn is_queued(self) -> bool {
        matches!(self, Mode::Queue | Mode::QueueBatch1)
    }

    pub(crate) fn argument(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Queue => "queue",
            Mode::QueueBatch1 => "batch1",
            Mode::Dir => "dir",
        }
    }

    pub(crate) fn parse(argument: &str) -> Self {
        match argument {
            "direct" => Mode::Direct,
            "queue" => Mode::Queue,
            "batch1" => Mode::QueueBatch1,
            "dir" => Mode::Dir,
            other => panic!("unknown queue mode {other}"),
        }
    }
}

/// The queue scenario: 4 KiB files over 32 sessions, each mode in the
/// same run (a warm-up, then the median of three), on the disk at `base`.
pub(crate) fn drive(base: &Path) {
    let load = Load {
        name: "4 KiB, queue",
        sessions: 32,
        files_per_session: 200,
        size: 4096,
    };
    let dir = base.join(format!("ftprelay-queue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!("queue and spool in {} (must be a real disk)", dir.display());
    println!(
        "{:<10} {:>6} {:>9} {:>10} {:>13} {:>10} {:>12}",
        "server", "files", "files/s", "server CPU", "vs fsync each", "drained s", "left queued"
    );
    let mut results = Vec::new();
    let roles = [
        Role::SyncedSink,
        Role::Queued(Mode::QueueBatch1),
        Role::Queued(Mode::Direct),
        Role::Queued(Mode::Queue),
    ];
    for role in roles {
        let _ = run_against(role, load, &dir);
        let mut runs: Vec<_> = (0..crate::RUNS)
            .map(|_| run_against(role, load, &dir))
            .collect();
        runs.sort_by_key(|run| run.elapsed);
        let median = &runs[crate::RUNS / 2];
        let rate = load.files() as f64 / median.elapsed.as_secs_f64();
        let baseline = results.first().map_or(rate, |&(_, r, _)| r);
        results.push((role, rate, median.cpu_seconds));
        let (drained, left) = median.drained.map_or(("-".to_owned(), 0), |(d, left)| {
            (format!("{:.3}", d.as_secs_f64()), left)
        });
        println!(
            "{:<10} {:>6} {:>9.0} {:>10.3} {:>12.2}x {:>10} {:>12}",
            role.label(),
            load.files(),
            rate,
            median.cpu_seconds,
            rate / baseline,
            drained,
            left
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The queue directory of a run in `dir`.
pub(crate) fn queue_dir(dir: &Path) -> PathBuf {
    dir.join("queue")
}

/// After the load: how long until the queue's `active/` is empty (bounded
/// at a minute), and how many uploads were left then.
pub(crate) fn wait_drained(dir: &Path, since: Instant) -> (Duration, usize) {
    let active = queue_dir(dir).join("active");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // One data file an upload (its record may be in the journal yet).
        let left = std::fs::read_dir(&active)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "data"))
                    .count()
            })
            .unwrap_or(0);
        if left == 0 || Instant::now() > deadline {
            return (since.elapsed(), left);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Child process: the relay on tokio in `mode`, spooling and queueing
/// beneath `dir`, until standard input closes.
pub(crate) fn serve(mode: Mode, dir: &Path) {
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).expect("spool");
    let destination: Box<dyn ftprelay_deliver::Destination> = match mode {
        Mode::Dir => {
            let into = dir.join("delivered");
            let _ = std::fs::remove_dir_all(&into);
            std::fs::create_dir_all(&into).expect("the delivery directory");
            let template = into.to_str().expect("a UTF-8 path");
            Box::new(ftprelay_deliver::Directory::parse(template).expect("a directory"))
        }
        _ => Box::new(DiscardDestination),
    };
    let destinations = Destinations::new(vec![destination]);
    let queue = match mode {
        Mode::Direct | Mode::Dir => None,
        Mode::Queue | Mode::QueueBatch1 => {
            let queue_dir = queue_dir(dir);
            let _ = std::fs::remove_dir_all(&queue_dir);
            let mut settings = QueueSettings::new(queue_dir);
            if mode == Mode::QueueBatch1 {
                settings.max_batch = 1;
            }
            let routes = Arc::new(Everyone(destinations.clone()));
            Some(Queue::open(settings, routes).expect("open the queue"))
        }
    };
    crate::servers::serve_tokio(
        &spool,
        Queued {
            destinations,
            queue,
        },
    );
}

struct Everyone(Destinations);

impl Routes for Everyone {
    fn destinations(&self, _user: &[u8]) -> Option<Destinations> {
        Some(self.0.clone())
    }
}

/// The relay's processor: as `ftprelay` wires it for uploads (held
/// uploads of the devices profile are not part of this load), with or
/// without a queue.
#[derive(Clone)]
struct Queued {
    destinations: Destinations,
    queue: Option<Queue>,
}

impl Authenticator for Queued {
    type Processor = Queued;
    async fn authenticate(&self, _login: &Login) -> Result<Queued, LoginRejected> {
        Ok(self.clone())
    }
}

impl FileProcessor for Queued {
    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        match &self.queue {
            Some(queue) => queue.enqueue(upload, &self.destinations).await,
            None => {
                self.destinations
                    .deliver(upload, std::time::SystemTime::now())
                    .await
            }
        }
    }

    fn store_and_forward(&self) -> bool {
        self.queue.is_some()
    }

    fn admit(&self) -> Result<(), ProcessError> {
        self.queue.as_ref().map_or(Ok(()), Queue::admit)
    }
}
