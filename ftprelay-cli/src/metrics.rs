//! `--metrics ADDR`: the relay's counts as Prometheus metrics, from the
//! relay's [`Observer`] hook and the destinations' [`DeliveryObserver`],
//! encoded by `prometheus-client` (the official Rust client) in the
//! Prometheus text format. The HTTP side is `health.rs`.

mod health;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use ftprelay_deliver::{DeliveryObserver, Queue};
use ftprelay_tokio::proto::{ProcessError, TransferEnd};
use ftprelay_tokio::{LoginOutcome, Observation, Observer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub(crate) use health::serve;

/// A label set of one label, `NAME="value"`.
macro_rules! label {
    ($type:ident, $name:ident) => {
        #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct $type {
            $name: &'static str,
        }
    };
}
label!(Reason, reason);
label!(Outcome, result);
label!(Limit, limit);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivered {
    destination: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Destination {
    destination: String,
}

/// Bounds of the duration histograms, in seconds: a millisecond (a local
/// folder, the queue's journal) to ten minutes (a slow destination).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric of the relay, and what `/readyz` asks.
pub(crate) struct Metrics {
    registry: Registry,
    sessions_open: Gauge,
    connections_accepted: Counter,
    connections_refused: Family<Reason, Counter>,
    logins: Family<Outcome, Counter>,
    uploads: Family<Outcome, Counter>,
    received_bytes: Counter,
    processing: Histogram,
    deliveries: Family<Delivered, Counter>,
    delivery_duration: Family<Destination, Histogram, fn() -> Histogram>,
    limit_rejections: Family<Limit, Counter>,
    queue: Option<QueueGauges>,
    /// Set when the relay starts its shutdown: not ready any more.
    draining: AtomicBool,
}

/// The queue's gauges, read from the queue at each scrape.
struct QueueGauges {
    /// Set once the queue is open.
    queue: OnceLock<Queue>,
    uploads: Gauge,
    bytes: Gauge,
    oldest_age: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// The metrics of a relay, with the queue's when it has one (give it
    /// with [`Metrics::watch_queue`] once open).
    pub(crate) fn new(queued: bool) -> Self {
        let mut registry = Registry::with_prefix("ftprelay");
        let metrics = Self {
            sessions_open: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_refused: Family::default(),
            logins: Family::default(),
            uploads: Family::default(),
            received_bytes: Counter::default(),
            processing: histogram(),
            deliveries: Family::default(),
            delivery_duration: Family::new_with_constructor(histogram),
            limit_rejections: Family::default(),
            queue: queued.then(|| QueueGauges {
                queue: OnceLock::new(),
                uploads: Gauge::default(),
                bytes: Gauge::default(),
                oldest_age: Gauge::default(),
            }),
            draining: AtomicBool::new(false),
            registry: Registry::default(),
        };
        // The series of every known label value exist from the start, at 0:
        // a rate over a series that appears only with its first event
        // misses that event.
        for reason in ["total_limit", "per_address_limit"] {
            let _ = metrics
                .connections_refused
                .get_or_create(&Reason { reason });
        }
        for result in ["accepted", "rejected", "locked_out"] {
            let _ = metrics.logins.get_or_create(&Outcome { result });
        }
        for result in ["ok", "failed", "refused", "incomplete"] {
            let _ = metrics.uploads.get_or_create(&Outcome { result });
        }
        for limit in LIMITS {
            let _ = metrics.limit_rejections.get_or_create(&Limit { limit });
        }
        registry.register(
            "sessions_open",
            "Control connections being served now",
            metrics.sessions_open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Control connections admitted",
            metrics.connections_accepted.clone(),
        );
        registry.register(
            "connections_refused",
            "Control connections refused with 421, by the limit reached",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "logins",
            "Logins, by result (accepted, rejected, locked_out: refused unchecked)",
            metrics.logins.clone(),
        );
        registry.register(
            "uploads",
            "Uploads, by result: ok (226), failed (processing failed), refused (not admitted: 452), incomplete (the data transfer did not complete)",
            metrics.uploads.clone(),
        );
        registry.register_with_unit(
            "received",
            "Bytes of complete uploads received",
            Unit::Bytes,
            metrics.received_bytes.clone(),
        );
        registry.register_with_unit(
            "processing_duration",
            "Time from an upload's end to its processing's outcome (with --queue: until it is durably queued)",
            Unit::Seconds,
            metrics.processing.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts, by destination and result (ok, failed)",
            metrics.deliveries.clone(),
        );
        registry.register_with_unit(
            "delivery_duration",
            "Time of a delivery attempt, by destination",
            Unit::Seconds,
            metrics.delivery_duration.clone(),
        );
        registry.register(
            "limit_rejections",
            "Refusals at a limit: connections_total, connections_per_ip (421), login_lockout, queue_full (452)",
            metrics.limit_rejections.clone(),
        );
        if let Some(queue) = &metrics.queue {
            registry.register(
                "queue_uploads",
                "Uploads in the queue (failed ones too)",
                queue.uploads.clone(),
            );
            registry.register_with_unit(
                "queue",
                "Bytes of the uploads in the queue",
                Unit::Bytes,
                queue.bytes.clone(),
            );
            registry.register_with_unit(
                "queue_oldest_age",
                "Age of the oldest upload waiting for delivery; 0 when none waits",
                Unit::Seconds,
                queue.oldest_age.clone(),
            );
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// The queue whose gauges these are.
    pub(crate) fn watch_queue(&self, queue: Queue) {
        if let Some(gauges) = &self.queue {
            let _ = gauges.queue.set(queue);
        }
    }

    /// The metrics now, in the Prometheus text format (0.0.4).
    pub(crate) fn encode(&self) -> String {
        let watched = self.queue.as_ref().and_then(|g| Some((g, g.queue.get()?)));
        if let Some((gauges, queue)) = watched {
            let (uploads, bytes) = queue.usage();
            gauges
                .uploads
                .set(i64::try_from(uploads).unwrap_or(i64::MAX));
            gauges.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            let age = queue.oldest().map_or(Duration::ZERO, |oldest| {
                SystemTime::now().duration_since(oldest).unwrap_or_default()
            });
            gauges.oldest_age.set(age.as_secs_f64());
            // The queue counts the uploads it refused itself: the ones
            // refused once their size was known too, not only before 150.
            self.limit_rejections
                .get_or_create(&Limit {
                    limit: "queue_full",
                })
                .inner()
                .store(queue.refused(), Ordering::Relaxed);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// The relay is shutting down from now on.
    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Why the relay is not ready for more uploads, if it is not.
    pub(crate) fn not_ready(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("draining: the relay is shutting down");
        }
        let queue = self.queue.as_ref().and_then(|g| g.queue.get());
        if queue.is_some_and(Queue::is_full) {
            return Some("the queue is full");
        }
        None
    }

    fn upload(&self, result: &'static str) {
        self.uploads.get_or_create(&Outcome { result }).inc();
    }

    fn limit(&self, limit: &'static str) {
        self.limit_rejections.get_or_create(&Limit { limit }).inc();
    }
}

/// The limits of `ftprelay_limit_rejections_total`.
const LIMITS: [&str; 4] = [
    "connections_total",
    "connections_per_ip",
    "login_lockout",
    "queue_full",
];

impl Observer for Metrics {
    fn observe(&self, observation: &Observation<'_>) {
        match observation {
            Observation::SessionOpened => {
                self.connections_accepted.inc();
                self.sessions_open.inc();
            }
            Observation::SessionClosed => {
                self.sessions_open.dec();
            }
            Observation::ConnectionRefused(refusal) => {
                let (reason, limit) = match refusal {
                    ftprelay_tokio::TooManyConnections::PerAddress => {
                        ("per_address_limit", "connections_per_ip")
                    }
                    _ => ("total_limit", "connections_total"),
                };
                self.connections_refused
                    .get_or_create(&Reason { reason })
                    .inc();
                self.limit(limit);
            }
            Observation::Login(outcome) => {
                let result = match outcome {
                    LoginOutcome::Accepted => "accepted",
                    LoginOutcome::LockedOut => {
                        self.limit("login_lockout");
                        "locked_out"
                    }
                    _ => "rejected",
                };
                self.logins.get_or_create(&Outcome { result }).inc();
            }
            Observation::Received(TransferEnd::Complete { bytes }) => {
                self.received_bytes.inc_by(*bytes);
            }
            Observation::Received(_) => self.upload("incomplete"),
            // The queue counts its own refusals (`queue_full`, see `encode`).
            Observation::NotAdmitted(_) => self.upload("refused"),
            // A hold that succeeded is counted at the upload's processing.
            Observation::Held { result: Err(_), .. } => self.upload("failed"),
            Observation::Processed { result, took } => {
                self.processing.observe(took.as_secs_f64());
                self.upload(if result.is_ok() { "ok" } else { "failed" });
            }
            _ => {}
        }
    }
}

impl DeliveryObserver for Metrics {
    fn delivered(&self, destination: &str, result: Result<(), &ProcessError>, took: Duration) {
        let result = if result.is_ok() { "ok" } else { "failed" };
        let destination = destination.to_owned();
        self.delivery_duration
            .get_or_create(&Destination {
                destination: destination.clone(),
            })
            .observe(took.as_secs_f64());
        self.deliveries
            .get_or_create(&Delivered {
                destination,
                result,
            })
            .inc();
    }
}

/// The metrics of a relay, shared by the relay, its destinations and the
/// HTTP server.
pub(crate) type Shared = Arc<Metrics>;
