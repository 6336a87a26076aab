//! `--queue DIR`: store and forward. The flags and config keys of the
//! queue, the processor that queues instead of delivering, and the
//! `ftprelay queue` commands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use ftprelay_deliver::{Capacity, Destinations, QueueRequest, QueueSettings, Routes};

use crate::args::parse_size;
use crate::error::CliError;
use crate::file::{FileConfig, Size};

/// The queue's flags.
#[derive(Debug, Args)]
pub(crate) struct QueueArgs {
    /// Store and forward: answer 226 once a file is durably in this
    /// directory, then deliver it in the background, retrying failed
    /// destinations (see the README's "Store and forward").
    #[arg(long, value_name = "DIR")]
    pub(crate) queue: Option<PathBuf>,
    /// Seconds before the first retry of a failed delivery; each retry
    /// waits twice as long, ±20 % [default: 60].
    #[arg(long, value_name = "SECS")]
    pub(crate) queue_retry_first: Option<u64>,
    /// The longest wait between retries, in seconds [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub(crate) queue_retry_max: Option<u64>,
    /// Seconds after its receipt an upload is given up on and moved to
    /// DIR/failed/ [default: 432000, five days].
    #[arg(long, value_name = "SECS")]
    pub(crate) queue_max_age: Option<u64>,
    /// The most bytes the queue keeps; beyond, uploads are refused (452);
    /// K, M, G suffixes [default: half the free space of its file system].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) queue_max_bytes: Option<u64>,
    /// The most uploads the queue keeps; beyond, uploads are refused (452)
    /// [default: a quarter of its file system's free inodes, at most 1000000].
    #[arg(long, value_name = "N")]
    pub(crate) queue_max_files: Option<u64>,
    /// Deliveries at once from the queue [default: 16].
    #[arg(long, value_name = "N")]
    pub(crate) queue_deliveries: Option<usize>,
    /// Deliveries at once to any one destination [default: 4].
    #[arg(long, value_name = "N")]
    pub(crate) queue_deliveries_per_destination: Option<usize>,
    /// Seconds one delivery attempt may take [default: 600].
    #[arg(long, value_name = "SECS")]
    pub(crate) queue_attempt_timeout: Option<u64>,
    /// The most uploads made durable by one sync of the disk; 1 syncs each
    /// upload alone [default: 256].
    #[arg(long, value_name = "N")]
    pub(crate) queue_batch: Option<usize>,
}

/// The queue of the flags over the file's keys, if there is one.
pub(crate) fn settings(
    args: &QueueArgs,
    file: &FileConfig,
) -> Result<Option<QueueSettings>, CliError> {
    let Some(dir) = args.queue.clone().or_else(|| file.queue_dir.clone()) else {
        let any_set = args.queue_retry_first.is_some()
            || args.queue_retry_max.is_some()
            || args.queue_max_age.is_some()
            || args.queue_max_bytes.is_some()
            || args.queue_max_files.is_some()
            || args.queue_deliveries.is_some()
            || args.queue_deliveries_per_destination.is_some()
            || args.queue_attempt_timeout.is_some()
            || args.queue_batch.is_some();
        if any_set {
            return Err(usage("the --queue-… settings need --queue DIR"));
        }
        return Ok(None);
    };
    let mut settings = QueueSettings::new(dir);
    let secs =
        |flag: Option<u64>, key: Option<u64>, name: &str| -> Result<Option<Duration>, CliError> {
            match flag.or(key) {
                Some(0) => Err(usage(format!("{name} must be at least 1 second"))),
                Some(secs) => Ok(Some(Duration::from_secs(secs))),
                None => Ok(None),
            }
        };
    let count =
        |flag: Option<usize>, key: Option<usize>, name: &str| -> Result<Option<usize>, CliError> {
            match flag.or(key) {
                Some(0) => Err(usage(format!("{name} must be at least 1"))),
                other => Ok(other),
            }
        };
    if let Some(first) = secs(
        args.queue_retry_first,
        file.queue_retry_first,
        "queue_retry_first",
    )? {
        settings.backoff.first = first;
    }
    if let Some(cap) = secs(
        args.queue_retry_max,
        file.queue_retry_max,
        "queue_retry_max",
    )? {
        settings.backoff.cap = cap;
    }
    if settings.backoff.cap < settings.backoff.first {
        return Err(usage(
            "queue_retry_max must not be shorter than queue_retry_first",
        ));
    }
    if let Some(age) = secs(args.queue_max_age, file.queue_max_age, "queue_max_age")? {
        settings.backoff.max_age = age;
    }
    if let Some(timeout) = secs(
        args.queue_attempt_timeout,
        file.queue_attempt_timeout,
        "queue_attempt_timeout",
    )? {
        settings.attempt_timeout = timeout;
    }
    if let Some(total) = count(
        args.queue_deliveries,
        file.queue_deliveries,
        "queue_deliveries",
    )? {
        settings.limits.total = total;
    }
    if let Some(each) = count(
        args.queue_deliveries_per_destination,
        file.queue_deliveries_per_destination,
        "queue_deliveries_per_destination",
    )? {
        settings.limits.per_destination = each;
    }
    if let Some(batch) = count(args.queue_batch, file.queue_batch, "queue_batch")? {
        settings.max_batch = batch;
    }
    let max_bytes = match (args.queue_max_bytes, &file.queue_max_bytes) {
        (Some(bytes), _) => Some(bytes),
        (None, Some(Size::Bytes(bytes))) => Some(*bytes),
        (None, Some(Size::Text(text))) => {
            Some(parse_size(text).map_err(|e| usage(format!("queue_max_bytes: {e}")))?)
        }
        (None, None) => None,
    };
    let max_files = args.queue_max_files.or(file.queue_max_files);
    if max_bytes.is_some() || max_files.is_some() {
        let free = Capacity::for_dir(existing_ancestor(&settings.dir), 0).unwrap_or(Capacity {
            max_bytes: u64::MAX,
            max_files: u64::MAX,
        });
        settings.capacity = Some(Capacity {
            max_bytes: max_bytes.unwrap_or(free.max_bytes),
            max_files: max_files.unwrap_or(free.max_files),
        });
    }
    Ok(Some(settings))
}

/// `dir`, or the nearest folder above it that exists (the queue directory
/// is created later): its file system's free space.
fn existing_ancestor(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|a| a.is_dir())
        .unwrap_or_else(|| Path::new("."))
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// Where a queued upload goes: the destinations of its user now.
#[derive(Debug)]
pub(crate) struct UserRoutes {
    pub(crate) by_name: HashMap<Vec<u8>, Destinations>,
    pub(crate) anonymous: Option<Destinations>,
}

impl Routes for UserRoutes {
    fn destinations(&self, user: &[u8]) -> Option<Destinations> {
        if let Some(destinations) = self.by_name.get(user) {
            return Some(destinations.clone());
        }
        match user {
            b"anonymous" | b"ftp" => self.anonymous.clone(),
            _ => None,
        }
    }
}

/// `ftprelay queue …`: the uploads in a queue directory, for a relay that
/// runs on it or not.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// One line per upload: id, status, user, name, size, age, attempts,
    /// next attempt, last error (tab-separated, a header first).
    List {
        /// The queue directory (--queue).
        dir: PathBuf,
    },
    /// Everything kept of one upload, as JSON.
    Show {
        /// The queue directory.
        dir: PathBuf,
        /// The upload's id, as `list` shows it.
        id: String,
    },
    /// Try uploads again now (all if no id is given); failed ones go back
    /// to the queue with their maximum age counted from now.
    Retry {
        /// The queue directory.
        dir: PathBuf,
        /// The uploads' ids.
        ids: Vec<String>,
    },
    /// Remove uploads from the queue, delivered or not.
    Drop {
        /// The queue directory.
        dir: PathBuf,
        /// The uploads' ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Runs `command`; what it prints.
pub(crate) fn run(command: &QueueCommand) -> Result<String, CliError> {
    let failed = |e: std::io::Error| CliError::Runtime(e.to_string());
    match command {
        QueueCommand::List { dir } => {
            let listed = ftprelay_deliver::list_queue(dir).map_err(failed)?;
            let now = SystemTime::now();
            let mut out =
                String::from("id\tstatus\tuser\tname\tsize\tage\tattempts\tnext\tlast_error\n");
            for upload in listed {
                let age = now.duration_since(upload.received).unwrap_or_default();
                let next = match upload.next {
                    None => "-".to_owned(),
                    Some(at) => match at.duration_since(now) {
                        Ok(wait) if wait.as_secs() > 0 => format!("in {}", span(wait)),
                        _ => "now".to_owned(),
                    },
                };
                let fields = [
                    upload.id,
                    upload.status.to_owned(),
                    cell(&upload.user),
                    cell(&upload.name),
                    upload.size.to_string(),
                    span(age),
                    upload.attempts.to_string(),
                    next,
                    upload.last_error.as_deref().map_or("-".to_owned(), cell),
                ];
                out.push_str(&fields.join("\t"));
                out.push('\n');
            }
            Ok(out)
        }
        QueueCommand::Show { dir, id } => {
            let mut text = ftprelay_deliver::show_queue(dir, id).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => CliError::Usage(e.to_string()),
                _ => failed(e),
            })?;
            text.push('\n');
            Ok(text)
        }
        QueueCommand::Retry { dir, ids } => answer(dir, &QueueRequest::Retry(ids.clone())),
        QueueCommand::Drop { dir, ids } => answer(dir, &QueueRequest::Drop(ids.clone())),
    }
}

fn answer(dir: &Path, request: &QueueRequest) -> Result<String, CliError> {
    let lines = ftprelay_deliver::queue_request(dir, request).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotFound => {
            CliError::Usage(e.to_string())
        }
        _ => CliError::Runtime(e.to_string()),
    })?;
    // An id that is not in the queue is an error of the command.
    let missing: Vec<&String> = lines
        .iter()
        .filter(|l| l.ends_with("no such upload in the queue"))
        .collect();
    if let Some(first) = missing.first() {
        return Err(CliError::Usage((*first).clone()));
    }
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

/// A duration as `1d2h`, `3h4m`, `5m6s`, `7s`.
fn span(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Client text in one tab-separated cell: control characters escaped.
fn cell(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
