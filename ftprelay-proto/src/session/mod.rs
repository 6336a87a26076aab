//! The session state machine: one per control connection.

mod commands;
mod devices;
mod event;
mod lifecycle;
mod login;
mod namespace;
mod record;
mod store_and_forward;
mod timers;
mod transfer;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use event::{
    DataEvent, Input, LoginVerdict, Output, ReceiveRequest, SpoolFailure, TransferEnd, TransferId,
};

use crate::command::{Arg, Command};
use crate::config::{Config, Profile};
use crate::error::CommandError;
use crate::framer::{Frame, LineFramer};
use crate::reply::{Reply, ReplyCode};
use lifecycle::Lifecycle;
use namespace::{Namespace, SessionFile};
use record::UploadRecord;

/// The FTP session of one control connection, as a pure state machine.
///
/// # Methods
///
/// - Construction: [`Session::new`] (queues the greeting).
/// - The one input: [`Session::handle`], with the current time and an
///   [`Input`]: control bytes, the control connection closing, the answer to
///   a login check, data-channel news, a processor's outcome (or, for a
///   store-and-forward processor, its admission of an upload or its hold of
///   a held one), or time passing.
/// - The one output: [`Session::poll_output`], drained after every input
///   until it returns [`Output::Wait`] (or [`Output::Finished`]).
/// - Queries: [`Session::wants_control_bytes`], [`Session::is_logged_in`],
///   [`Session::is_finished`], [`Session::user`], [`Session::peer`].
///
/// # Drain order
///
/// Outputs come in the order they must be carried out: a reply before the
/// [`Output::CloseControl`] that follows it, a [`Output::CloseData`] before
/// the [`Output::Listen`] that replaces the channel, the `150` reply before
/// the [`Output::Receive`] of its upload. Carry each out (or start it, for
/// the asynchronous ones) before polling the next.
///
/// # Invariants
///
/// - Bytes from the peer never panic and never return an error: they become
///   replies.
/// - Every complete command line gets exactly one final reply (2xx–5xx),
///   in order, while the control connection is open. Lines that arrive
///   while the session waits are queued, not lost.
/// - What comes out does not depend on how the control bytes were split
///   into reads.
/// - The deadline of [`Output::Wait`] is never before the latest `now`.
/// - Nothing here reads a clock, touches a file or opens a socket.
#[derive(Debug)]
pub struct Session {
    config: Arc<Config>,
    local: SocketAddr,
    peer: SocketAddr,
    now: Instant,
    framer: LineFramer,
    /// Parsed lines waiting for their turn, with the bytes each holds.
    queue: VecDeque<(Result<Command, CommandError>, usize)>,
    queued_bytes: usize,
    outputs: VecDeque<Output>,
    /// Reply bytes not yet written, once the adapter reports them
    /// ([`Input::Unwritten`]): the replies of this session since then added.
    reply_backlog: Option<usize>,
    login: LoginState,
    failed_logins: u32,
    /// The command in progress, waiting for an input or a deadline.
    blocked: Option<Blocked>,
    data: DataChannel,
    /// `EPSV ALL` was sent: only EPSV may set up data connections now.
    epsv_all: bool,
    /// Uploads acknowledged on receipt and still being processed, with
    /// their deadlines.
    background: Vec<(UploadRecord, Instant)>,
    uploads_started: u64,
    /// When the session last finished something for the client: the idle
    /// timeout counts from here.
    last_activity: Instant,
    /// Where the control connection is in its life.
    lifecycle: Lifecycle,
    profile: Profile,
    /// The user's processor stores and forwards: uploads are admitted
    /// first, held ones kept before their `226` ([`LoginVerdict::Accepted`]).
    store_and_forward: bool,
    /// The devices profile's virtual namespace.
    namespace: Namespace,
    /// When the session started: the login deadline counts from here.
    started: Instant,
    /// When the line being received began (slow-loris deadline).
    line_started: Option<Instant>,
    /// The adapter can do TLS: `AUTH TLS` is offered (and FEAT says so).
    tls_offered: bool,
    /// The control connection is under TLS.
    tls_active: bool,
    /// `PROT P`: data connections under TLS.
    data_protected: bool,
}

#[derive(Debug, Clone)]
enum LoginState {
    NeedUser,
    NeedPassword(Arg),
    LoggedIn(Arg),
}

/// What the command in progress waits for.
#[derive(Debug)]
enum Blocked {
    /// The application checks a login.
    LoginCheck {
        user: Arg,
        /// When the PASS arrived: a failure's delay counts from here.
        started: Instant,
        deadline: Instant,
    },
    /// A failed login waits out its delay before this reply.
    LoginDelay {
        until: Instant,
        reply: Reply,
        close: bool,
    },
    /// A store-and-forward processor is asked whether it takes the upload
    /// before its `150`.
    Admission {
        pending: PendingTransfer,
        deadline: Instant,
    },
    /// A store-and-forward processor keeps a held upload before its `226`.
    Holding {
        record: UploadRecord,
        /// The upload as the namespace keeps it once held.
        file: SessionFile,
        deadline: Instant,
    },
    /// PASV/EPSV waits for the adapter to listen.
    Listen { extended: bool, deadline: Instant },
    /// An upload is under way.
    Transfer(Transfer),
    /// An upload was spooled; its reply waits for the processor.
    Processing {
        record: UploadRecord,
        deadline: Instant,
        /// What a success is answered with.
        reply: OnProcessed,
        /// A command to run once processing is done (a QUIT that first
        /// finalises held uploads).
        then: Option<Command>,
    },
}

#[derive(Debug)]
struct Transfer {
    record: UploadRecord,
    file_name: Bytes,
    /// The virtual path (components).
    path: Vec<Bytes>,
    /// Set for a directory listing: sent, not received.
    listing: Option<Bytes>,
    /// A temporary name (devices profile): held for its rename once received.
    held: bool,
    /// The most bytes this upload may have.
    max_size: u64,
    phase: TransferPhase,
}

/// An upload waiting for its admission: what starts its transfer once
/// admitted.
#[derive(Debug)]
struct PendingTransfer {
    record: UploadRecord,
    path: Vec<Bytes>,
    /// The `150`'s text.
    text: String,
    held: bool,
    max_size: u64,
}

/// How a finished processing is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnProcessed {
    /// `226`: the upload's STOR waits for it.
    Transfer,
    /// `250`: the RNTO that finalised a held upload waits for it.
    Rename,
    /// Nothing: the upload was answered already (held, then finalised by
    /// QUIT, the idle timer or the end of the session).
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferPhase {
    /// `150` was sent; the data connection has not come yet.
    AwaitingConnection { deadline: Instant },
    /// The adapter streams the data connection into the spool.
    Receiving,
}

/// The data channel prepared for the next transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataChannel {
    None,
    /// A passive listener is open until `expires`; `connected` once the
    /// client's data connection was accepted on it.
    Passive {
        expires: Instant,
        connected: bool,
    },
    /// PORT/EPRT named this address.
    Active(SocketAddr),
}

impl Session {
    /// A session for a control connection from `peer`, accepted on `local`,
    /// at time `now`. The greeting is the first output.
    pub fn new(config: Arc<Config>, now: Instant, local: SocketAddr, peer: SocketAddr) -> Self {
        let mut session = Self {
            framer: LineFramer::new(config.max_line_len),
            local,
            peer,
            now,
            queue: VecDeque::new(),
            queued_bytes: 0,
            outputs: VecDeque::new(),
            reply_backlog: None,
            login: LoginState::NeedUser,
            failed_logins: 0,
            blocked: None,
            data: DataChannel::None,
            epsv_all: false,
            background: Vec::new(),
            uploads_started: 0,
            last_activity: now,
            lifecycle: Lifecycle::Open,
            profile: config.profile,
            store_and_forward: false,
            namespace: Namespace::default(),
            started: now,
            line_started: None,
            tls_offered: false,
            tls_active: false,
            data_protected: false,
            config,
        };
        let greeting = Reply::new(ReplyCode::SERVICE_READY, session.config.greeting.clone());
        session.reply(greeting);
        session
    }

    /// Feeds one input at time `now`; then drain [`Session::poll_output`].
    ///
    /// A `now` earlier than one seen before is treated as that earlier
    /// maximum: time never runs backwards inside the session. Once the session is finished, inputs are ignored.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        if self.is_finished() {
            return;
        }
        self.now = self.now.max(now);
        self.fire_timers();
        match input {
            Input::ControlBytes(bytes) => self.receive_control(bytes),
            Input::ControlEof => self.control_eof(),
            Input::ControlClosed => self.control_lost(),
            Input::LoginChecked(verdict) => self.login_checked(verdict),
            Input::Data(event) => self.data_event(event),
            Input::Processed { upload, result } => self.processed(upload, result),
            Input::Admission { upload, result } => self.admission(upload, result),
            Input::Held { upload, result } => self.held(upload, result),
            Input::Timeout => {}
            Input::Unwritten(bytes) => self.reply_backlog = Some(bytes),
            Input::Shutdown => self.lifecycle = self.lifecycle.stopping(),
        }
        self.drive();
    }

    /// The next thing to do. Call until it returns [`Output::Wait`] or
    /// [`Output::Finished`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        if self.is_finished() {
            return Output::Finished;
        }
        Output::Wait(self.next_deadline())
    }

    /// Whether the session wants more control bytes now. It says no while
    /// enough pipelined lines wait (see [`Config::max_pending_input`]) and
    /// once the control connection is closed; stop reading then, so that
    /// memory stays bounded and TCP holds the client back.
    pub fn wants_control_bytes(&self) -> bool {
        self.lifecycle.reads() && self.queued_bytes < self.config.max_pending_input
    }

    /// A session that offers TLS: the adapter has a certificate. Without
    /// it, `AUTH` gets `502` and FEAT does not list TLS, so clients fall
    /// back to plain FTP.
    pub fn with_tls_offered(mut self) -> Self {
        self.tls_offered = true;
        self
    }

    /// A session whose control connection is under TLS from the start
    /// (implicit FTPS, the port 990 style): the adapter did the handshake
    /// before the greeting. Its data connections are protected too unless
    /// the client sends `PROT C`: implicit FTPS clients that never send
    /// `PROT` (Perl's Net::FTP with `SSL => 1`) start TLS on them.
    pub fn with_tls_active(mut self) -> Self {
        self.tls_active = true;
        self.data_protected = true;
        self
    }

    /// Whether data connections are under TLS now (`PROT P`, or implicit
    /// FTPS). An adapter starts the handshake as soon as a data connection
    /// is accepted: some clients handshake before they send `STOR`.
    pub fn is_data_protected(&self) -> bool {
        self.data_protected
    }

    /// A session that shares its uploads with the same user's other
    /// sessions for a moment (devices profile; see [`crate::RecentUploads`]).
    /// Give every session of a relay the same one.
    pub fn with_recent_uploads(mut self, recent: Arc<crate::RecentUploads>) -> Self {
        let me = recent.register();
        self.namespace.recent = Some((recent, me));
        self
    }

    /// Whether the control connection is under TLS.
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// Whether the control connection is still open (the session may still
    /// be finishing its processing when it is not).
    pub fn is_control_open(&self) -> bool {
        self.lifecycle != Lifecycle::Closed
    }

    /// Whether a login succeeded on this session.
    pub fn is_logged_in(&self) -> bool {
        matches!(self.login, LoginState::LoggedIn(_))
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&[u8]> {
        match &self.login {
            LoginState::LoggedIn(user) => Some(user.as_bytes()),
            _ => None,
        }
    }

    /// The control connection's peer.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the session is over: control connection closed, nothing in
    /// flight, every output drained.
    pub fn is_finished(&self) -> bool {
        !self.is_control_open()
            && self.outputs.is_empty()
            && !matches!(self.blocked, Some(Blocked::Processing { .. }))
            && self.background.is_empty()
    }

    fn receive_control(&mut self, bytes: &[u8]) {
        if !self.lifecycle.reads() {
            return;
        }
        let queued_before = self.queue.len();
        let queue = &mut self.queue;
        let queued_bytes = &mut self.queued_bytes;
        self.framer
            .push(bytes, |frame| Self::enqueue(queue, queued_bytes, frame));
        // A line that began in this read starts its clock now.
        let finished_a_line = self.queue.len() > queued_before;
        self.line_started = match (self.framer.is_mid_line(), self.line_started) {
            (true, Some(started)) if !finished_a_line => Some(started),
            (true, _) => Some(self.now),
            (false, _) => None,
        };
    }

    /// Forgets every byte received and not yet executed.
    fn discard_pending_input(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
        self.framer = LineFramer::new(self.config.max_line_len);
        self.line_started = None;
    }

    /// End of file: a last line without its line end still counts. During a
    /// transfer, end of file counts as the connection lost: a client that
    /// was killed sends it too, and its upload must not be processed.
    fn control_eof(&mut self) {
        if !self.lifecycle.reads() {
            return;
        }
        if let Some(Blocked::Transfer(_)) = self.blocked {
            return self.control_lost();
        }
        self.lifecycle = self.lifecycle.peer_done();
        self.line_started = None;
        let queue = &mut self.queue;
        let queued_bytes = &mut self.queued_bytes;
        self.framer
            .finish(|frame| Self::enqueue(queue, queued_bytes, frame));
    }

    fn enqueue(
        queue: &mut VecDeque<(Result<Command, CommandError>, usize)>,
        queued_bytes: &mut usize,
        frame: Frame,
    ) {
        // Two bytes for the line end, so that empty lines count too.
        let cost = frame.len() + 2;
        let parsed = match frame {
            Frame::Line(line) => Command::parse(&line),
            Frame::TooLong => Err(CommandError::LineTooLong),
        };
        queue.push_back((parsed, cost));
        *queued_bytes += cost;
    }

    /// Runs queued commands until one has to wait, firing due timers first.
    fn drive(&mut self) {
        loop {
            self.fire_timers();
            if !self.is_control_open() {
                return;
            }
            let stopping = matches!(self.lifecycle, Lifecycle::Stopping { .. });
            let peer_done = self.lifecycle.is_peer_done();
            let ending = stopping || (peer_done && self.queue.is_empty());
            // Held uploads are processed before a session ends.
            if ending && self.blocked.is_none() && self.finalize_next_held(None) {
                continue;
            }
            if peer_done && self.blocked.is_none() && self.queue.is_empty() {
                self.close();
                return;
            }
            if stopping && self.blocked.is_none() {
                self.reply(Reply::new(
                    ReplyCode::SERVICE_NOT_AVAILABLE,
                    "Server shutting down; closing control connection.",
                ));
                self.close();
                return;
            }
            let front = self.queue.front().map(|(parsed, _)| parsed);
            // ABOR is the one command that interrupts the one in progress.
            let abort = match (&self.blocked, front) {
                (Some(Blocked::Transfer(_)), Some(Ok(Command::Abor))) => true,
                // The client does not read its replies: wait until it does.
                (_, Some(_)) if self.is_reply_backlog_full() => return,
                (Some(_), _) | (None, None) => return,
                (None, Some(Ok(Command::Stor(_) | Command::Stou(_)))) if self.background_full() => {
                    return;
                }
                (None, Some(_)) => false,
            };
            let Some((parsed, cost)) = self.queue.pop_front() else {
                return;
            };
            self.queued_bytes -= cost;
            self.last_activity = self.now;
            if abort {
                self.abort_transfer();
            } else {
                self.execute(parsed);
            }
        }
    }

    /// `now + wait`, for a deadline.
    fn deadline_after(&self, wait: Duration) -> Instant {
        later(self.now, wait)
    }

    /// Whether so many reply bytes wait to be written that no further
    /// command runs.
    fn is_reply_backlog_full(&self) -> bool {
        self.reply_backlog
            .is_some_and(|bytes| bytes >= self.config.max_unwritten_replies)
    }

    fn reply(&mut self, reply: Reply) {
        if self.is_control_open() {
            if let Some(backlog) = &mut self.reply_backlog {
                // The code, separators and line ends: about 8 bytes a line.
                *backlog += reply.text().len() + 8 * (reply.text().matches('\n').count() + 1);
            }
            tracing::debug!(reply = %reply, "<-");
            self.outputs.push_back(Output::Reply(reply));
        }
    }

    /// The command in progress is done: the next one may run.
    fn unblock(&mut self) {
        self.blocked = None;
        self.last_activity = self.now;
    }

    /// Closes the control connection after the replies so far. Processing in
    /// flight goes on (its result can no longer be answered).
    fn close(&mut self) {
        if !self.is_control_open() {
            return;
        }
        self.outputs.push_back(Output::CloseControl);
        self.end_control();
    }

    /// The control connection is gone: stop everything that served the
    /// client, keep processing what was already received.
    fn control_lost(&mut self) {
        self.end_control();
    }

    fn end_control(&mut self) {
        self.lifecycle = Lifecycle::Closed;
        self.queue.clear();
        self.queued_bytes = 0;
        match self.blocked.take() {
            Some(Blocked::Transfer(Transfer {
                record,
                phase: TransferPhase::Receiving,
                ..
            })) => {
                record.finish(self.now, self.user(), "control connection lost");
                self.outputs.push_back(Output::AbortTransfer(record.upload));
            }
            Some(Blocked::Transfer(Transfer { record, .. })) => {
                record.finish(self.now, self.user(), "control connection lost");
            }
            processing @ Some(Blocked::Processing { .. }) => self.blocked = processing,
            Some(Blocked::Admission { pending, .. }) => {
                pending
                    .record
                    .finish(self.now, self.user(), "control connection lost");
            }
            // Never answered 226: the client will send it again. Dropped
            // (the processor forgets what it kept), never processed.
            Some(Blocked::Holding { record, .. }) => {
                record.finish(self.now, self.user(), "control connection lost");
                self.outputs.push_back(Output::Discard(record.upload));
            }
            Some(Blocked::Listen { .. }) => self.outputs.push_back(Output::CloseData),
            _ => {}
        }
        self.close_data_channel();
        // Held uploads are processed as they are: the client cannot rename
        // them any more.
        while self.finalize_next_held(None) {}
    }

    fn background_full(&self) -> bool {
        self.config.ack_on_receipt
            && self.background.len() >= self.config.max_background_processing.max(1)
    }
}

/// `from + wait`, with a wait of more than ten years taken as ten years: a
/// configured "forever" must not overflow the clock.
fn later(from: Instant, wait: Duration) -> Instant {
    const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
    from + wait.min(TEN_YEARS)
}

/// An address with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) seen as IPv4, so that
/// a dual-stack listener compares addresses correctly.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}
