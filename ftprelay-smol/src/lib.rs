//! ftprelay on smol: an FTP server that hands every upload to your code
//! and keeps nothing.
//!
//! The same relay as `ftprelay-tokio`, on async-io sockets and timers, with
//! the relay's tasks on an executor of its own that runs inside
//! [`Relay::serve`]: whatever polls that future (`smol::block_on`,
//! async-std's executor, another `block_on`) runs the relay. Every protocol
//! decision is made by `ftprelay-proto`; the relay itself (connection
//! driver, spool, receiving threads) is `ftprelay-io`'s, as on tokio.
//!
//! Write an [`proto::Authenticator`] that returns a [`proto::FileProcessor`]
//! for each login, [`Relay::bind`] it with a [`proto::RelayConfig`], and
//! [`Relay::serve`] until a shutdown future resolves.

mod relay;
mod runtime;

pub use ftprelay_io::{LoginOutcome, NoObserver, Observation, Observer, Tls, TooManyConnections};
pub use proto;
pub use relay::Relay;
