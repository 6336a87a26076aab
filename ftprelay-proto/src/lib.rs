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
//!   spool, connection limits), with [`ConnectionCounter`] and
//!   [`PassivePorts`] for the decisions every adapter makes the same way.
//!
//! # The contract
//!
//! A [`Session`] has one mutation entry point, [`Session::handle`], which
//! takes the current time and one [`Input`]:
//!
//! - [`Input::ControlBytes`]: bytes read from the control connection, split
//!   anywhere (read only while [`Session::wants_control_bytes`] says so);
//! - [`Input::ControlClosed`]: the control connection closed;
//! - [`Input::LoginChecked`]: the answer to [`Output::CheckLogin`];
//! - [`Input::Data`]: data-channel news ([`DataEvent`]: listening, a peer
//!   connected, the transfer ended with N bytes or failed and why);
//! - [`Input::Processed`]: the processor's outcome;
//! - [`Input::Timeout`]: the deadline of the last [`Output::Wait`] passed.
//!
//! After every input, drain [`Session::poll_output`] until it returns
//! [`Output::Wait`]: replies to write, a login to check, a data channel to
//! open or close, an upload to receive into a fresh spool file, a spooled
//! file to process or discard, the control connection to close. Outputs come
//! in the order they must be carried out. [`Output::Finished`] ends the
//! session.
//!
//! Invariants, for any input:
//!
//! - bytes from the peer never panic and never return an error; they become
//!   replies;
//! - every complete command line gets exactly one final reply, in order;
//! - outputs do not depend on how the input bytes were split into reads;
//! - a deadline asked for is never before the latest `now`;
//! - data bytes never pass through the core: the adapter streams the data
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
//!         0 => Input::ControlClosed,
//!         n => Input::ControlBytes(&buf[..n]),
//!     };
//!     # let _ = deadline;
//!     session.handle(now(), input);
//! }
//! ```
//!
//! # Writing an adapter
//!
//! An adapter drives one [`Session`] per control connection with whatever IO
//! it has. `examples/blocking.rs` is a whole relay over blocking `std::net`
//! in under 200 lines; `ftprelay-tokio` and `ftprelay-smol` are the real
//! ones. What each output asks of the adapter:
//!
//! | output | the adapter |
//! |---|---|
//! | [`Output::Reply`] | appends [`Reply::encode`] to the control connection's write buffer |
//! | [`Output::CheckLogin`] | runs the [`Authenticator`], keeps the [`FileProcessor`] it returns, answers [`Input::LoginChecked`] |
//! | [`Output::Listen`] | binds a listener on the control connection's local address (in the passive port range: [`PassivePorts::candidates`]), answers [`DataEvent::Listening`] or [`DataEvent::ListenFailed`], then reports each accepted connection as [`DataEvent::Connected`] |
//! | [`Output::Connect`] | connects, answers [`DataEvent::Connected`] or [`DataEvent::ConnectFailed`] |
//! | [`Output::AcceptDataConnection`] / [`Output::RefuseDataConnection`] | keeps / closes the connection it just reported |
//! | [`Output::Receive`] | streams the data connection into a new spool file it names (mode 0600, [`SPOOL_FILE_PREFIX`]), stopping past the size limit or after the stall timeout, answers [`DataEvent::TransferEnded`] |
//! | [`Output::Process`] | runs the [`FileProcessor`] on the spooled file, deletes the file, answers [`Input::Processed`] |
//! | [`Output::Discard`], [`Output::AbortTransfer`], [`Output::CancelProcessing`] | deletes the spool file (stopping the transfer or the processor) |
//! | [`Output::CloseData`] | closes the listener and any data connection not being received |
//! | [`Output::CloseControl`] | flushes the replies, then closes the control connection |
//! | [`Output::Wait`] | waits for the next input or the deadline ([`Input::Timeout`]) |
//! | [`Output::Finished`] | drops the session |
//!
//! Reading the control connection: pass the bytes as they come
//! ([`Input::ControlBytes`]) while [`Session::wants_control_bytes`] says so;
//! end of file is [`Input::ControlEof`] (the client may still read), an error
//! [`Input::ControlClosed`]. A relay-wide shutdown is [`Input::Shutdown`] to
//! every session. Connection limits are counted with [`ConnectionCounter`];
//! a refused connection gets [`TooManyConnections::reply`].
//!
//! # Panics and errors
//!
//! Nothing a peer sends can make this crate panic: bad input becomes a reply
//! (each error knows its reply, see [`CommandError::reply`]). Inputs that do
//! not fit the session's state (news about an upload it gave up on, a second
//! answer to one login check) are ignored, so adapter races are harmless.

mod app;
mod command;
mod config;
mod error;
mod framer;
mod parse;
pub mod path;
mod pattern;
mod rate;
mod recent;
mod relay_config;
mod reply;
mod session;

#[doc(hidden)]
pub mod fuzzing;

pub use app::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, ProcessRequest, Upload,
};
pub use command::{
    Arg, Command, EpsvArg, FileStructure, FormCode, NetworkProtocol, ProtectionLevel,
    RepresentationType, TransferMode,
};
pub use config::{Config, Profile};
pub use error::CommandError;
pub use framer::{Frame, LineFramer};
pub use rate::MinimumRate;
pub use recent::RecentUploads;
pub use relay_config::{PassivePorts, RelayConfig};
pub use reply::{Reply, ReplyCode};
pub use session::{
    DataEvent, Input, LoginVerdict, Output, ReceiveRequest, Session, SpoolFailure, TransferEnd,
    UploadId,
};
