//! Several destinations for one upload: every one gets the file, and the
//! device hears `226` only when every one succeeded.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ftprelay_proto::{FileProcessor, ProcessError, Upload};

use crate::fields::Fields;

/// The future a [`Destination`] returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), ProcessError>> + Send + 'a>>;

/// One place uploads go: a folder, a mailbox, a bucket, a URL, a server.
///
/// Unlike a [`FileProcessor`], a destination is told the upload's
/// [`Fields`] (its `{id}`, its `{time}`), decided once for all the
/// destinations of the upload; and it can be kept in a list of others
/// ([`Destinations`]).
pub trait Destination: fmt::Display + Send + Sync + 'static {
    /// Delivers the spooled file of `upload`. Dropping the future cancels
    /// the delivery: nothing of it may complete afterwards.
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a>;
}

/// Told of every delivery attempt to a destination, by [`Destinations`]
/// and by the queue's delivery loop (for metrics): on the delivering task,
/// so it must return at once.
pub trait DeliveryObserver: Send + Sync + 'static {
    /// An attempt to deliver to `destination` (its name, as in the log)
    /// ended with `result` after `took`.
    fn delivered(&self, destination: &str, result: Result<(), &ProcessError>, took: Duration);
}

/// A list of destinations, as a [`FileProcessor`]: each upload is delivered
/// to all of them at once; the upload succeeds when every one did.
///
/// When some fail, the device is told `451` (try again) if any failure may
/// pass, and the first permanent failure's reply (`550`, `552`) when none
/// can; the log names each destination that failed, and why. A retry
/// delivers to all of them again.
#[derive(Clone)]
pub struct Destinations {
    list: Arc<[Box<dyn Destination>]>,
    observer: Option<Arc<dyn DeliveryObserver>>,
}

impl Destinations {
    /// The destinations of `list`; an empty list accepts every upload and
    /// delivers it nowhere.
    pub fn new(list: Vec<Box<dyn Destination>>) -> Self {
        Self {
            list: list.into(),
            observer: None,
        }
    }

    /// These destinations, each attempt told to `observer` (here, and in
    /// a queue that got them from its [`Routes`](crate::Routes)).
    pub fn observed_by(mut self, observer: Arc<dyn DeliveryObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer, if any, of an attempt.
    pub(crate) fn observe(
        &self,
        destination: &str,
        result: Result<(), &ProcessError>,
        took: Duration,
    ) {
        if let Some(observer) = &self.observer {
            observer.delivered(destination, result, took);
        }
    }

    /// The destinations, in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Destination> {
        self.list.iter().map(|d| &**d)
    }

    /// Destination number `index` (from 0), in the order given.
    pub fn get(&self, index: usize) -> Option<&dyn Destination> {
        self.list.get(index).map(|d| &**d)
    }

    /// Delivers `upload` to every destination, with the fields of `at`.
    pub async fn deliver(&self, upload: &Upload, at: SystemTime) -> Result<(), ProcessError> {
        let fields = Fields::new(upload, at);
        // Names, in the log, the destinations still at work if this future
        // is dropped (the relay gave up at its processing timeout, or the
        // session went away): otherwise the log would not say which one
        // hung.
        let mut watch = Unfinished {
            destinations: &self.list,
            done: vec![false; self.list.len()],
            id: fields.id(),
            finished: false,
        };
        let started = Instant::now();
        let results = join_all(
            self.list
                .iter()
                .map(|destination| destination.deliver(upload, &fields)),
            &mut watch.done,
        )
        .await;
        let names = self.observer.is_some();
        watch.finished = true;
        let mut failures: Vec<(String, ProcessError)> = Vec::new();
        for (destination, (result, ended)) in self.list.iter().zip(results) {
            if names {
                let took = ended.saturating_duration_since(started);
                self.observe(&destination.to_string(), result.as_ref().map(|_| ()), took);
            }
            match result {
                Ok(()) => {
                    tracing::info!(destination = %destination, id = fields.id(), "delivered");
                }
                Err(error) => {
                    tracing::warn!(destination = %destination, id = fields.id(), reason = %error, "delivery failed");
                    failures.push((destination.to_string(), error));
                }
            }
        }
        combine(failures)
    }
}

/// The deliveries of one upload, and which of them are done.
struct Unfinished<'a> {
    destinations: &'a [Box<dyn Destination>],
    done: Vec<bool>,
    id: &'a str,
    finished: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for (destination, done) in self.destinations.iter().zip(&self.done) {
            if !done {
                tracing::warn!(destination = %destination, id = self.id, "delivery given up on, unfinished (the processing timeout, or the session ended)");
            }
        }
    }
}

/// One error for the failures of an upload's destinations.
fn combine(failures: Vec<(String, ProcessError)>) -> Result<(), ProcessError> {
    if failures.is_empty() {
        return Ok(());
    }
    let reason = failures
        .iter()
        .map(|(destination, error)| format!("{destination}: {}", error.reason()))
        .collect::<Vec<_>>()
        .join("; ");
    let chosen = failures
        .iter()
        .find(|(_, error)| !error.is_permanent())
        .or_else(|| failures.first())
        .map(|(_, error)| error.clone())
        .unwrap_or_else(|| ProcessError::transient(""));
    Err(chosen.with_reason(reason))
}

impl fmt::Display for Destinations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.list.is_empty() {
            return f.write_str("nowhere");
        }
        for (n, destination) in self.list.iter().enumerate() {
            if n > 0 {
                f.write_str(" + ")?;
            }
            write!(f, "{destination}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Destinations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destinations({self})")
    }
}

impl FileProcessor for Destinations {
    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        self.deliver(upload, SystemTime::now()).await
    }
}

/// Polls every future until all are done; their outputs in order, each
/// with when it was seen done.
async fn join_all<'a>(
    deliveries: impl Iterator<Item = Delivery<'a>>,
    done_flags: &mut [bool],
) -> Vec<(Result<(), ProcessError>, Instant)> {
    let mut pending: Vec<(usize, Delivery<'a>)> = deliveries.enumerate().collect();
    let mut done: Vec<Option<(Result<(), ProcessError>, Instant)>> =
        (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(at, delivery)| match delivery.as_mut().poll(cx) {
            std::task::Poll::Ready(result) => {
                done[*at] = Some((result, Instant::now()));
                done_flags[*at] = true;
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                (
                    Err(ProcessError::transient("not delivered")),
                    Instant::now(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_named_and_a_passing_one_decides_the_reply() {
        assert_eq!(combine(Vec::new()), Ok(()));
        let error = combine(vec![
            ("mail".to_owned(), ProcessError::too_large("over 10 MiB")),
            ("s3".to_owned(), ProcessError::transient("no such bucket")),
        ])
        .expect_err("failed");
        assert!(!error.is_permanent());
        assert_eq!(error.reply().code().as_u16(), 451);
        assert!(error.reason().contains("mail: over 10 MiB"), "{error}");
        assert!(error.reason().contains("s3: no such bucket"), "{error}");
        let error = combine(vec![(
            "mail".to_owned(),
            ProcessError::too_large("over 10 MiB"),
        )])
        .expect_err("failed");
        assert_eq!(error.reply().code().as_u16(), 552);
    }
}
