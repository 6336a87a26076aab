//! ftprelay on smol.
//!
//! This crate will drive [`proto::Session`]s with smol (async-io) sockets, timers and
//! tasks. It is an empty shell until the smol adapter lands; the protocol
//! itself lives in `ftprelay-proto`.

pub use proto;
