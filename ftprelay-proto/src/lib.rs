//! The sans-IO core of ftprelay: an FTP server for uploads, as a pure state
//! machine.
//!
//! This crate is deterministic: it does no networking, touches no file, and
//! never reads a clock. Time is an argument. Bytes from the control
//! connection go in; replies and requests to the adapter come out. The
//! adapters (`ftprelay-tokio`, `ftprelay-smol`) move bytes, run timers and
//! call the application's code; every protocol decision is made here.
//!
//! # The pieces
//!
//! - [`LineFramer`]: bounded control-line framing (CRLF or bare LF, Telnet
//!   sequences stripped, over-long lines discarded and reported once).
//! - [`Command::parse`]: a nom parser from one line to a typed [`Command`];
//!   [`Command::encode`] writes it back.
//! - [`Reply`]: codes and texts, single- and multi-line encoding.
//! - [`Session`]: the state machine of one control connection.
//! - [`Authenticator`] and [`FileProcessor`]: how the application plugs in.
//! - [`Config`]: every limit and timeout of a session, with explained
//!   defaults; [`RelayConfig`] for a whole relay (listeners, passive ports,
//!   spool, connection limits), with [`PassivePorts`] for the passive port
//!   choice every adapter makes the same way.
//! - [`path`]: the one function that turns client path bytes into safe
//!   names; [`RecentUploads`]: a user's uploads seen by the user's other
//!   sessions for a moment.
//! - [`proxy`]: the PROXY protocol header (v1 and v2) a load balancer sends
//!   first, read incrementally and never past its end; [`Cidr`] for the
//!   proxies a relay trusts.
//!
//! The relay around the core, its IO over any runtime, is the crate
//! `ftprelay-io`; `ftprelay-tokio` and `ftprelay-smol` run it on tokio and
//! smol.
//!
//! # The contract
//!
//! A [`Session`] has one mutation entry point, [`Session::handle`], which
//! takes the current time and one [`Input`], and one output,
//! [`Session::poll_output`]. After every input, drain the outputs until
//! [`Output::Wait`] (or [`Output::Finished`]).
//!
//! ## Inputs
//!
//! | input | the adapter feeds it when |
//! |---|---|
//! | [`Input::ControlBytes`] | bytes were read from the control connection (split anywhere; read only while [`Session::wants_control_bytes`] says so) |
//! | [`Input::ControlEof`] | the client finished sending (end of file) but may still read: what it sent is answered, then the connection is closed |
//! | [`Input::ControlClosed`] | the control connection failed or was reset: nothing more can be written |
//! | [`Input::LoginChecked`] | the answer to [`Output::CheckLogin`], in one [`LoginVerdict`]: accepted (with the user's own profile, if any, and whether the processor stores and forwards), rejected, or locked out |
//! | [`Input::Data`] | data-channel news ([`DataEvent`]): listening on an address or not, a data connection came (or an active connect failed), a transfer ended and how ([`TransferEnd`]) |
//! | [`Input::Processed`] | the answer to [`Output::Process`]: the processor's result (a panic is a [`ProcessError::transient`]) |
//! | [`Input::Admission`] | the answer to [`Output::CheckAdmission`]: [`FileProcessor::admit`]'s result (a full queue is [`ProcessError::storage_full`], `452`) |
//! | [`Input::Held`] | the answer to [`Output::Hold`]: [`FileProcessor::hold`]'s result |
//! | [`Input::Timeout`] | the deadline of the last [`Output::Wait`] passed |
//! | [`Input::Unwritten`] | after each write of the control connection: how many reply bytes still wait (the session runs no command while too many do) |
//! | [`Input::Shutdown`] | the relay stops: the command in progress finishes, then `421` and close |
//!
//! ## Outputs
//!
//! | output | the adapter |
//! |---|---|
//! | [`Output::Reply`] | appends [`Reply::encode`] to the control connection's write buffer (through TLS once started) |
//! | [`Output::StartTls`] | starts TLS on the control connection: everything after the `234` it just wrote goes through TLS |
//! | [`Output::CheckLogin`] | runs the [`Authenticator`], keeps the [`FileProcessor`] it returns, answers [`Input::LoginChecked`] |
//! | [`Output::Listen`] | binds a listener on the control connection's local address (in the passive port range: [`PassivePorts::candidates`], a port shared by sessions from different client addresses), answers [`DataEvent::Listening`] or [`DataEvent::ListenFailed`], then reports each accepted connection as [`DataEvent::Connected`] |
//! | [`Output::Connect`] | connects to the client's active-mode address, answers [`DataEvent::Connected`] or [`DataEvent::ConnectFailed`] |
//! | [`Output::AcceptDataConnection`] / [`Output::RefuseDataConnection`] | keeps / closes the connection it just reported (and, kept and protected ([`Session::is_data_protected`]), starts its TLS handshake) |
//! | [`Output::Receive`] | streams the data connection into a new spool file it names (mode 0600), within the [`ReceiveRequest`]'s size limit, stall timeout and minimum rate, under TLS if asked; answers [`DataEvent::TransferEnded`] |
//! | [`Output::Send`] | writes the bytes (a directory listing) to the data connection and closes it; answers [`DataEvent::TransferEnded`] |
//! | [`Output::Process`] | runs the [`FileProcessor`] on the spooled file, deletes the file, answers [`Input::Processed`] |
//! | [`Output::CheckAdmission`] | asks a store-and-forward processor whether it takes one more upload ([`FileProcessor::admit`]), answers [`Input::Admission`]; before the `150`, so nothing is received until then |
//! | [`Output::Hold`] | has a store-and-forward processor keep a held upload (devices profile, temporary name) durably ([`FileProcessor::hold`]), answers [`Input::Held`], and keeps the spool file for the [`Output::Process`] or [`Output::Discard`] that follows |
//! | [`Output::Discard`], [`Output::AbortTransfer`], [`Output::CancelProcessing`] | deletes the spool file (stopping the transfer or the processor; for a held upload, cancelling its hold and calling [`FileProcessor::forget`] first) |
//! | [`Output::CloseData`] | closes the listener and any data connection not being received |
//! | [`Output::CloseControl`] | flushes the replies (bounded in time), then closes the control connection |
//! | [`Output::Wait`] | waits for the next input, or the deadline if there is one ([`Input::Timeout`]) |
//! | [`Output::Finished`] | drops the session: nothing is in flight any more |
//!
//! ## Order, and inputs while draining
//!
//! Outputs come in the order they must be carried out: a reply before the
//! [`Output::CloseControl`] that follows it, a [`Output::CloseData`] before
//! the [`Output::Listen`] that replaces the channel, the `150` before the
//! [`Output::Receive`] of its upload, [`Output::StartTls`] right after the
//! `234`. Carry each out (or start it, for the asynchronous ones) before
//! polling the next.
//!
//! An input may be fed while draining, before [`Output::Wait`] came: an
//! adapter that can answer at once does (`ftprelay-io` answers
//! [`Output::Listen`] with [`DataEvent::Listening`] from inside its drain
//! loop). The outputs that input causes queue behind the ones not polled
//! yet, so the order above still holds; keep draining until
//! [`Output::Wait`].
//!
//! ## Invariants, for any input
//!
//! - Bytes from the peer never panic and never return an error; they become
//!   replies.
//! - Every complete command line gets exactly one final reply, in order.
//! - Outputs do not depend on how the input bytes were split into reads.
//! - A deadline asked for is never before the latest `now`.
//! - Data bytes never pass through the core: the adapter streams the data
//!   connection into the spool file and reports the byte count.
//!
//! # The drive loop
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Instant;
//! use ftprelay_proto::{Config, Input, Output, Session};
//!
//! # fn read_control(_: &mut [u8]) -> usize { 0 }
//! # fn now() -> Instant { unimplemented!() }
//! let local = "127.0.0.1:2121".parse().unwrap();
//! let peer = "127.0.0.1:40000".parse().unwrap();
//! let mut session = Session::new(Arc::new(Config::default()), now(), local, peer);
//! let mut buf = [0u8; 4096];
//! loop {
//!     // 1. Drain outputs until the session asks to wait.
//!     let deadline = loop {
//!         match session.poll_output() {
//!             Output::Reply(reply) => { /* write reply.to_bytes() */ }
//!             Output::CheckLogin(login) => { /* start the authenticator */ }
//!             Output::Wait(deadline) => break deadline,
//!             Output::Finished => return,
//!             _other => { /* listen, connect, receive, process, close, … */ }
//!         }
//!     };
//!     // 2. Wait for the next event or the deadline, then feed it in.
//!     let n = read_control(&mut buf); // or: a timer fired, an upload ended, …
//!     let input = match n {
//!         0 => Input::ControlEof,
//!         n => Input::ControlBytes(&buf[..n]),
//!     };
//!     # let _ = deadline;
//!     session.handle(now(), input);
//! }
//! ```
//!
//! An adapter drives one [`Session`] per control connection with whatever IO
//! it has: `examples/blocking.rs` is a whole relay over blocking `std::net`
//! in under 200 lines; `ftprelay-io` is the real one.
//!
//! # Panics and errors
//!
//! Nothing a peer sends can make this crate panic: bad input becomes a reply
//! (each error knows its reply, see [`CommandError::reply`]). Inputs that do
//! not fit the session's state (news about an upload it gave up on, a second
//! answer to one login check) are ignored, so adapter races are harmless.

mod app;
mod bandwidth;
mod cidr;
pub mod civil;
mod command;
mod config;
mod error;
mod framer;
mod parse;
pub mod path;
mod pattern;
pub mod proxy;
mod public_address;
mod rate;
mod recent;
mod relay_config;
mod reply;
mod session;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use app::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, ProcessRequest, Upload,
};
pub use bandwidth::TokenBucket;
pub use cidr::{Cidr, CidrError};
pub use command::{
    Arg, Command, EpsvArg, FileStructure, FormCode, NetworkProtocol, ProtectionLevel,
    RepresentationType, TransferMode,
};
pub use config::{Config, Profile};
pub use error::CommandError;
pub use framer::{Frame, LineFramer};
pub use public_address::PublicAddress;
pub use rate::MinimumRate;
pub use recent::RecentUploads;
pub use relay_config::{PassivePorts, RelayConfig};
pub use reply::{Reply, ReplyCode};
pub use session::{
    DataEvent, Input, LoginVerdict, Output, ReceiveRequest, Session, SpoolFailure, TransferEnd,
    TransferId,
};
