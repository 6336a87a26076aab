//! ftprelay on tokio: an FTP server that hands every upload to your code
//! and keeps nothing.
//!
//! Write an [`proto::Authenticator`] that returns a [`proto::FileProcessor`]
//! for each login, [`Relay::bind`] it with a [`proto::RelayConfig`], and
//! [`Relay::serve`] until a shutdown future resolves. Every protocol decision
//! is made by `ftprelay-proto`; this crate gives tokio's sockets, timers and
//! tasks to the relay of `ftprelay-io`, which both adapters share.
//!
//! - Each upload is streamed into a new spool file (mode 0600, named by the
//!   relay) and handed to the processor; `226` follows its success, `451`
//!   its failure, panic or timeout. The file is deleted in every case.
//! - A slow processor delays nothing but its own upload's reply.
//! - Limits: connections in total and per address (`421`), passive ports
//!   from a range (`425` when exhausted), the core's timeouts.
//! - Logs go through `tracing`: a span per session (peer, user), the
//!   command/reply transcript at debug level (password masked), one info
//!   line per upload.

mod relay;
mod runtime;

pub use ftprelay_io::{LoginOutcome, NoObserver, Observation, Observer, Tls, TooManyConnections};
pub use proto;
pub use relay::Relay;

/// The README's code blocks, compiled as doctests so the example there
/// keeps working.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
