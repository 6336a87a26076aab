//! The IO half of ftprelay: everything that touches sockets, files and
//! threads, written once over a small [`Runtime`] trait, so that each
//! runtime adapter (`ftprelay-tokio`, `ftprelay-smol`) is its `Runtime` and
//! little else. Every protocol decision is made by [`proto::Session`]
//! (`ftprelay-proto`, which does no IO at all); this crate carries them out.
//!
//! - [`Relay`]: binds the listeners (before it touches the spool), accepts,
//!   admits or refuses (`421`) each connection, runs a session per
//!   connection as a task of the runtime, and shuts down gracefully.
//! - The connection driver (`driver`): one control connection's bytes,
//!   timers, TLS, data connections and processors, fed to its session.
//! - The spool (`spool`): a locked directory of files the relay names,
//!   deleted in every case.
//! - Data threads (`data_threads`, `receive`, `splice`, `data_tls`): each
//!   upload is copied by a blocking thread (splice(2) where the kernel can),
//!   which halves the CPU per GiB compared with async file writes.
//! - [`Tls`]: the relay's certificate, reloadable while it runs.
//! - [`Observer`]: told what happens (connections, logins, uploads), for
//!   the application's metrics; the relay itself keeps no metrics.
//! - The PROXY protocol (`proxy`): connections from trusted load balancers
//!   start with a header naming the client, read before anything else.
//!
//! Implementing [`Runtime`] for another executor gives a relay on it: see
//! the two adapters' `runtime.rs`, about a hundred lines each.

mod bandwidth;
mod control;
mod data;
mod data_threads;
mod data_tls;
mod driver;
mod limits;
mod listen;
mod observe;
mod panics;
mod passive;
mod proxy;
mod receive;
mod relay;
mod runtime;
mod shared_ports;
#[cfg(target_os = "linux")]
mod splice;
mod spool;
mod state;
mod throttle;
mod tls;
mod wait;

pub use limits::{ConnectionCounter, TooManyConnections, client_group};
pub use observe::{LoginOutcome, NoObserver, Observation, Observer};
pub use proto;
pub use relay::Relay;
pub use runtime::{BoxFuture, Runtime};
pub use spool::{SPOOL_FILE_PREFIX, is_spool_file_name};
pub use throttle::{Attempt, LoginThrottle, MAX_REMEMBERED_ADDRESSES};
pub use tls::Tls;
