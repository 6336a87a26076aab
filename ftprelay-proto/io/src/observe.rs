//! What a relay tells an observer as it serves: connections admitted and
//! refused, sessions ended, logins, uploads received and processed. The
//! application counts them (the `ftprelay` command turns them into
//! Prometheus metrics); the relay depends on no metrics library, and
//! without an observer ([`Relay::with_observer`](crate::Relay::with_observer))
//! it tells [`NoObserver`], which does nothing.

use std::time::Duration;

use proto::{ProcessError, TransferEnd};

use crate::limits::TooManyConnections;

/// Told what happens in a relay, on the relay's own tasks: each call must
/// return at once (count, do not block or wait).
pub trait Observer: Send + Sync + 'static {
    /// `observation` just happened.
    fn observe(&self, observation: &Observation<'_>);
}

/// Observes nothing: the observer of a relay not given one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn observe(&self, _: &Observation<'_>) {}
}

/// Something that happened in a relay. New kinds may come: match with a
/// catch-all arm.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Observation<'a> {
    /// A control connection was admitted: its session starts.
    SessionOpened,
    /// A session admitted before ended, however it ended (the client left,
    /// a timeout, a panic, the relay's shutdown).
    SessionClosed,
    /// A control connection was refused (`421`) at a connection limit.
    ConnectionRefused(TooManyConnections),
    /// A login was checked, or refused without a check.
    Login(LoginOutcome),
    /// An upload's data transfer ended: complete (with its size) or not.
    Received(&'a TransferEnd),
    /// The processor did not admit an upload before its `150` (a full
    /// store-and-forward queue: `452`); nothing was received.
    NotAdmitted(&'a ProcessError),
    /// The processor held an upload (store and forward: kept until its
    /// rename), or failed to, after `took`.
    Held {
        /// Its outcome.
        result: Result<(), &'a ProcessError>,
        /// From the hold's start to its outcome.
        took: Duration,
    },
    /// The processor processed an upload, or failed to, after `took`: the
    /// client's `226`, or its error's reply, follows.
    Processed {
        /// Its outcome.
        result: Result<(), &'a ProcessError>,
        /// From the processing's start to its outcome.
        took: Duration,
    },
}

/// How a login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// The authenticator accepted it.
    Accepted,
    /// The authenticator rejected it (or panicked).
    Rejected,
    /// Refused unchecked: the client is locked out after too many failures.
    LockedOut,
}
