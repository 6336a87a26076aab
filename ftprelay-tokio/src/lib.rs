//! ftprelay on tokio.
//!
//! This crate will drive [`proto::Session`]s with tokio sockets, timers and
//! tasks. It is an empty shell until the tokio adapter lands; the protocol
//! itself lives in `ftprelay-proto`.

pub use proto;
