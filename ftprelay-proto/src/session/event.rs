//! What goes into a [`super::Session`] and what comes out of it.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::app::{Login, LoginRejected, ProcessError, ProcessRequest};
use crate::reply::Reply;

/// Names one upload within its session, so that late news about an upload
/// the session already gave up on can be recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub(crate) u64);

impl TransferId {
    /// The transfer numbered `number`: for a processor that rebuilds an
    /// [`crate::Upload`] it stored (a queue after a restart). Sessions
    /// number their own.
    pub fn new(number: u64) -> Self {
        Self(number)
    }

    /// The number, unique within one session, counting from 1.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One input to [`super::Session::handle`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// Bytes read from the control connection, split anywhere.
    ControlBytes(&'a [u8]),
    /// The client finished sending (end of file on the control connection)
    /// but may still read: the commands already received are answered, then
    /// the connection is closed. Scripts that pipe commands through `nc`
    /// end this way. During a transfer it counts as [`Input::ControlClosed`].
    ControlEof,
    /// The control connection failed or was reset: nothing more can be
    /// written to it.
    ControlClosed,
    /// The answer to [`Output::CheckLogin`]: the whole verdict in one input.
    LoginChecked(LoginVerdict),
    /// News from the data channel.
    Data(DataEvent),
    /// The answer to [`Output::Process`].
    Processed {
        /// The upload the processor ran on.
        upload: TransferId,
        /// What it returned; a panic is a [`ProcessError::transient`].
        result: Result<(), ProcessError>,
    },
    /// The answer to [`Output::CheckAdmission`]: whether the processor takes
    /// this upload now ([`crate::FileProcessor::admit`]).
    Admission {
        /// The upload asked about.
        upload: TransferId,
        /// `Ok`: the upload goes on (`150`); an error is answered with its
        /// reply ([`ProcessError::storage_full`]: `452`) and nothing is
        /// received. A panic is a [`ProcessError::transient`].
        result: Result<(), ProcessError>,
    },
    /// The answer to [`Output::Hold`]: whether the processor keeps this held
    /// upload durably ([`crate::FileProcessor::hold`]).
    Held {
        /// The upload held.
        upload: TransferId,
        /// `Ok`: answered `226`, and the upload waits for its rename (its
        /// spool file kept); an error is answered with its reply and the
        /// upload discarded. A panic is a [`ProcessError::transient`].
        result: Result<(), ProcessError>,
    },
    /// Nothing happened but time passed: the deadline of the last
    /// [`Output::Wait`] was reached.
    Timeout,
    /// How many bytes of replies are still waiting to be written to the
    /// control connection, reported by the adapter after each write. Once an
    /// adapter reports it, the session stops running commands while more
    /// than [`crate::Config::max_unwritten_replies`] wait (the pipelined
    /// lines stay queued, within [`crate::Config::max_pending_input`]), so a
    /// client that sends and never reads holds a bounded amount of memory.
    /// An adapter that never reports it gets no such bound.
    Unwritten(usize),
    /// The relay is shutting down. The command in progress (an upload being
    /// received or processed, a login check) finishes and is answered; then
    /// the session answers `421` and closes instead of running anything
    /// else.
    Shutdown,
}

/// The answer to a login check ([`Output::CheckLogin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginVerdict {
    /// The login is good: `230`. `profile` is this user's own profile
    /// ([`crate::FileProcessor::profile`]), if not the relay's.
    Accepted {
        /// The session's profile from now on, if not the relay's.
        profile: Option<crate::Profile>,
        /// The user's processor stores and forwards
        /// ([`crate::FileProcessor::store_and_forward`]): each upload is
        /// first admitted ([`Output::CheckAdmission`]), and each held one
        /// kept ([`Output::Hold`]) before its `226`.
        store_and_forward: bool,
    },
    /// The login is wrong: `530` once [`crate::Config::failed_login_delay`]
    /// has passed since the PASS (`421` and close after the last allowed).
    Rejected,
    /// The client is locked out after too many failed logins (the adapter's
    /// throttle said so): `421`, then closed.
    LockedOut,
}

impl LoginVerdict {
    /// Accepted, in the relay's profile, with a processor that does not
    /// store and forward.
    pub const ACCEPTED: Self = Self::Accepted {
        profile: None,
        store_and_forward: false,
    };
}

impl From<Result<(), LoginRejected>> for LoginVerdict {
    fn from(result: Result<(), LoginRejected>) -> Self {
        match result {
            Ok(()) => Self::ACCEPTED,
            Err(LoginRejected) => Self::Rejected,
        }
    }
}

/// News from the data channel, reported by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataEvent {
    /// The answer to [`Output::Listen`]: listening on this address.
    Listening(SocketAddr),
    /// The answer to [`Output::Listen`]: no listener could be opened (the
    /// passive port range is exhausted, say).
    ListenFailed,
    /// A data connection was established: accepted on the passive listener
    /// from `peer`, or the connect of [`Output::Connect`] succeeded. The
    /// session answers with [`Output::AcceptDataConnection`] or
    /// [`Output::RefuseDataConnection`] at once.
    Connected {
        /// The other end of the data connection.
        peer: SocketAddr,
    },
    /// The connect of [`Output::Connect`] failed.
    ConnectFailed,
    /// The transfer of [`Output::Receive`] ended.
    TransferEnded {
        /// The upload being received.
        upload: TransferId,
        /// How it ended.
        end: TransferEnd,
    },
}

/// How a transfer into the spool ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferEnd {
    /// The client closed the data connection cleanly: the file is complete.
    Complete {
        /// Bytes written to the spool file.
        bytes: u64,
    },
    /// More than the size limit arrived; receiving stopped.
    TooLarge,
    /// The data connection was reset or failed before a clean end.
    Reset,
    /// No bytes arrived for the stall timeout.
    Stalled,
    /// The spool file could not be written.
    SpoolFailed(SpoolFailure),
    /// The upload's average rate fell below [`ReceiveRequest::min_rate`].
    TooSlow,
    /// The TLS handshake on a protected data connection failed or took
    /// longer than the stall timeout.
    TlsHandshakeFailed,
    /// The data connection did not resume the control connection's TLS
    /// session, and the relay requires it to.
    TlsSessionNotResumed,
}

/// Why the spool could not take an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpoolFailure {
    /// The file system is full (`ENOSPC`, `EDQUOT`): `452`.
    StorageFull,
    /// Any other local error: `451`.
    Other,
}

/// What the adapter must do next, from [`super::Session::poll_output`].
///
/// Outputs come in the order they must be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Write this reply to the control connection.
    Reply(Reply),
    /// Check this login with the application's authenticator, keep the
    /// processor it returns for this session, and answer with
    /// [`Input::LoginChecked`].
    CheckLogin(Login),
    /// Open a passive listener on the control connection's local address
    /// (in the passive port range) and answer with [`DataEvent::Listening`]
    /// or [`DataEvent::ListenFailed`]. Any earlier data channel has been
    /// closed by a [`Output::CloseData`] before this.
    Listen,
    /// Connect to this address (active mode) and answer with
    /// [`DataEvent::Connected`] or [`DataEvent::ConnectFailed`].
    Connect(SocketAddr),
    /// Keep the data connection just reported by [`DataEvent::Connected`];
    /// a passive listener may be closed now.
    AcceptDataConnection,
    /// Close the data connection just reported by [`DataEvent::Connected`];
    /// keep listening for the right peer.
    RefuseDataConnection,
    /// Stream the accepted data connection into a new spool file, and answer
    /// with [`DataEvent::TransferEnded`].
    Receive(ReceiveRequest),
    /// Write these bytes (a directory listing) to the accepted data
    /// connection, close it, and answer with [`DataEvent::TransferEnded`]
    /// ([`TransferEnd::Complete`] once all was written).
    Send {
        /// Names this transfer in the answer.
        transfer: TransferId,
        /// What to send.
        bytes: bytes::Bytes,
        /// Under TLS (`PROT P`).
        tls: bool,
    },
    /// Stop receiving this upload and delete its spool file. No
    /// [`DataEvent::TransferEnded`] is expected for it any more.
    AbortTransfer(TransferId),
    /// Delete the spool file of this upload, which ended without success
    /// (or was held, then deleted or replaced before its rename: the
    /// processor then forgets what it held, and a hold still running is
    /// cancelled).
    Discard(TransferId),
    /// Close the passive listener and any data connection not being received.
    CloseData,
    /// Run the processor on this spooled upload, delete the spool file when
    /// it returns, and answer with [`Input::Processed`]. For an upload held
    /// before ([`Output::Hold`]), the spool file is the one kept since.
    Process(ProcessRequest),
    /// Ask the processor whether it takes one more upload
    /// ([`crate::FileProcessor::admit`]), and answer with
    /// [`Input::Admission`] for this upload. Only for a store-and-forward
    /// processor ([`LoginVerdict::Accepted`]), at STOR, STOU and APPE, before
    /// the `150`: nothing is received until the answer, and without one in
    /// time (within [`crate::Config::process_timeout`]) the upload is
    /// refused `451`.
    CheckAdmission(TransferId),
    /// Have the processor keep this held upload durably
    /// ([`crate::FileProcessor::hold`]) and answer with [`Input::Held`]; keep
    /// the spool file afterwards (do not delete it): a later
    /// [`Output::Process`] of the same upload uses it, or a later
    /// [`Output::Discard`] drops it, and then the processor forgets what it
    /// held ([`crate::FileProcessor::forget`]). Only for a store-and-forward
    /// processor, for an upload with a temporary name (devices profile),
    /// before its `226`. Without an answer within
    /// [`crate::Config::process_timeout`] the client gets `451` and an
    /// [`Output::Discard`] follows (cancel the hold then).
    Hold(ProcessRequest),
    /// The processor of this upload ran out of time: cancel it and delete
    /// the spool file. No [`Input::Processed`] is expected for it any more.
    CancelProcessing(TransferId),
    /// Write the replies so far (the `234`) as they are, then run the TLS
    /// handshake as the server on the control connection: every byte read
    /// and written afterwards goes through TLS. A failed handshake is
    /// [`Input::ControlClosed`].
    StartTls,
    /// Flush the replies written so far, then close the control connection.
    /// Processing still in flight continues; keep polling.
    CloseControl,
    /// Nothing to do until the next input, or until this deadline, whichever
    /// comes first; then call [`super::Session::handle`] with what happened
    /// (with [`Input::Timeout`] if only time passed).
    Wait(Option<Instant>),
    /// The session is over: the control connection is closed and nothing is
    /// in flight. Drop it.
    Finished,
}

/// How to receive one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// Names this upload in later inputs and outputs.
    pub upload: TransferId,
    /// Stop and report [`TransferEnd::TooLarge`] once more than this many
    /// bytes arrived.
    pub max_size: u64,
    /// Stop and report [`TransferEnd::Stalled`] when no byte arrives for this
    /// long.
    pub stall_timeout: Duration,
    /// Stop and report [`TransferEnd::TooSlow`] when the upload's average
    /// rate falls below this.
    pub min_rate: crate::MinimumRate,
    /// Read no faster than this many bytes per second
    /// ([`crate::TokenBucket`]); `None`: as fast as it comes.
    pub max_rate: Option<u64>,
    /// Run the data connection under TLS (`PROT P`).
    pub tls: bool,
}
