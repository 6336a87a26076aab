//! The driver of one control connection: it moves bytes, runs timers and
//! calls the application's code. Every decision comes from
//! [`proto::Session`]; every runtime primitive from [`Runtime`].

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use proto::{
    Authenticator, DataEvent, FileProcessor, Input, LoginRejected, Output, ProcessError,
    ProcessRequest, ReceiveRequest, TransferEnd, TransferId, Upload,
};

use crate::data_tls;
use crate::receive::{self, DataConnection};
use crate::runtime::{BoxFuture, Runtime};
use crate::spool::SpoolFile;
use crate::state::{ConnectionGuard, Shared};
use crate::throttle::Attempt;
use crate::tls::{SessionTls, Tls};

/// Control bytes read at once. The buffer lives on the stack of one poll,
/// not in the session: an idle session holds no read buffer at all.
const READ_CHUNK: usize = 4096;
/// How long the last replies may take to reach a client before the control
/// connection is dropped anyway.
const CLOSE_LINGER: Duration = Duration::from_secs(10);
/// How long to wait before accepting again after accepting failed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a login waiting for its client's other checks asks again.
const LOGIN_RETRY: Duration = Duration::from_millis(20);
/// Events handled in a row before the driver lets other tasks run.
const EVENTS_BEFORE_YIELD: u32 = 32;

/// A login being checked: the processor, or the rejection (`None` if the
/// authenticator panicked).
type LoginCheck<P> = BoxFuture<Option<Result<P, LoginRejected>>>;
/// An upload being received: how it ended, and its spool file if complete.
type Receiving = (TransferId, BoxFuture<(TransferEnd, Option<SpoolFile>)>);
/// A processor running (`None` if it panicked; dropping it cancels it), and
/// the spool file it works on: kept here, not in the processor's task, so
/// that it is deleted the moment processing ends or is cancelled (a
/// cancelled task is dropped only later), before any reply.
type Processing = (
    TransferId,
    BoxFuture<Option<Result<(), ProcessError>>>,
    SpoolFile,
);

/// The whole life of an admitted connection, in a tracing span of its own
/// (peer, then user): counted by `guard` until it ends. Spawn it.
pub(crate) fn session<A, R>(
    shared: Arc<Shared<A, R>>,
    guard: ConnectionGuard<A, R>,
    control: R::Stream,
    (local, peer): (SocketAddr, SocketAddr),
    implicit_tls: bool,
    shutdown: BoxFuture<()>,
) -> impl Future<Output = ()> + Send + 'static
where
    A: Authenticator,
    R: Runtime,
    R::Stream: AsFd,
{
    let span = tracing::info_span!("session", %peer, user = tracing::field::Empty);
    tracing::Instrument::instrument(
        async move {
            let _guard = guard;
            tracing::debug!("connected");
            serve(shared, control, (local, peer), implicit_tls, shutdown).await;
            tracing::debug!("disconnected");
        },
        span,
    )
}

/// Serves one control connection until its session is finished.
/// `shutdown` resolves when the relay starts shutting down.
async fn serve<A, R>(
    shared: Arc<Shared<A, R>>,
    control: R::Stream,
    (local, peer): (SocketAddr, SocketAddr),
    implicit_tls: bool,
    shutdown: BoxFuture<()>,
) where
    A: Authenticator,
    R: Runtime,
    R::Stream: AsFd,
{
    tune_control(&control);
    let now = shared.runtime.now();
    let mut session = proto::Session::new(shared.session_config.clone(), now, local, peer)
        .with_wall_clock(std::time::SystemTime::now())
        .with_recent_uploads(shared.recent.clone());
    if shared.tls.is_some() {
        session = session.with_tls_offered();
    }
    // Implicit FTPS: TLS from the first byte, the greeting included.
    let (tls, tls_session) = match (implicit_tls, &shared.tls) {
        (true, Some(tls)) => match session_tls(tls, shared.config.tls_require_session_reuse) {
            Ok((connection, configs)) => {
                session = session.with_tls_active();
                (Some(connection), Some(configs))
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start TLS");
                return;
            }
        },
        _ => (None, None),
    };
    let mut driver = Driver {
        shared,
        session,
        local,
        peer,
        control,
        tls,
        tls_session,
        unwritten: Vec::new(),
        reading: true,
        closing_since: None,
        writer_shut: false,
        deadline: None,
        timer: None,
        linger: None,
        processor: None,
        login: None,
        attempt: None,
        login_waiting: None,
        listener: None,
        accept_paused: None,
        data_connection: None,
        just_connected: None,
        connecting: None,
        receiving: None,
        spooled: HashMap::new(),
        processing: Vec::new(),
        shutdown: Some(shutdown),
    };
    // From here on the session knows how much of its replies waits.
    driver.feed(Input::Unwritten(0));
    driver.run().await;
}

/// The socket options every control connection gets.
fn tune_control(control: &impl AsFd) {
    let socket = socket2::SockRef::from(control);
    // A 226 must not wait behind Nagle's algorithm.
    if let Err(error) = socket.set_tcp_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    // ABOR comes after a Telnet Synch whose DM byte is sent as TCP urgent
    // data: keep it in the stream, where the framer strips it.
    if let Err(error) = socket.set_out_of_band_inline(true) {
        tracing::debug!(%error, "cannot set SO_OOBINLINE");
    }
}

struct Driver<A: Authenticator, R: Runtime> {
    shared: Arc<Shared<A, R>>,
    session: proto::Session,
    local: SocketAddr,
    peer: SocketAddr,
    control: R::Stream,
    /// TLS on the control connection, once started.
    tls: Option<rustls::ServerConnection>,
    /// The TLS configurations of this control connection and its data
    /// connections, once TLS started.
    tls_session: Option<SessionTls>,
    /// Encoded replies not yet written.
    unwritten: Vec<u8>,
    /// Whether the control connection is still read.
    reading: bool,
    /// When the session asked to close the control connection.
    closing_since: Option<Instant>,
    writer_shut: bool,
    /// The session's deadline, and the timer that waits for it.
    deadline: Option<Instant>,
    timer: Option<(Instant, BoxFuture<()>)>,
    linger: Option<BoxFuture<()>>,
    processor: Option<Arc<A::Processor>>,
    login: Option<LoginCheck<A::Processor>>,
    /// The login check in flight, counted by the throttle until it ends.
    attempt: Option<InFlight<A, R>>,
    /// A login waiting for the client's other checks, and when to ask again.
    login_waiting: Option<(proto::Login, BoxFuture<()>)>,
    listener: Option<R::Listener>,
    /// Accepting data connections failed: wait for this before trying again.
    accept_paused: Option<BoxFuture<()>>,
    /// The accepted (or connected) data connection, until it is received;
    /// a protected one is handshaking already.
    data_connection: Option<DataConnection<R::Stream>>,
    /// A data connection reported to the session and awaiting its verdict.
    just_connected: Option<R::Stream>,
    connecting: Option<(SocketAddr, BoxFuture<io::Result<R::Stream>>)>,
    receiving: Option<Receiving>,
    /// Complete uploads between their transfer's end and the session's
    /// verdict (process or discard).
    spooled: HashMap<TransferId, SpoolFile>,
    /// Processors running; dropping one cancels it.
    processing: Vec<Processing>,
    shutdown: Option<BoxFuture<()>>,
}

/// What woke the connection up.
enum Event<P, D> {
    /// Bytes read into the poll's chunk (handled there, see `run`), an EOF
    /// (`Ok(0)`) or an error.
    Read(io::Result<usize>),
    /// Control bytes were read and handed on already.
    ReadHandled,
    Wrote(io::Result<usize>),
    LoginChecked(Result<P, LoginRejected>),
    Accepted(io::Result<(D, SocketAddr)>),
    Connected(SocketAddr, io::Result<D>),
    Received(TransferId, TransferEnd, Option<SpoolFile>),
    Processed(TransferId, Result<(), ProcessError>),
    AcceptResumed,
    LoginRetry,
    Deadline,
    Shutdown,
    CloseLingerExpired,
}

impl<A: Authenticator, R: Runtime> Driver<A, R>
where
    R::Stream: AsFd,
{
    async fn run(&mut self) {
        let mut events_in_a_row = 0u32;
        loop {
            if !self.drain() {
                break;
            }
            self.close_when_flushed();
            let event = std::future::poll_fn(|cx| {
                let mut chunk = [0; READ_CHUNK];
                self.poll_event(cx, &mut chunk).map(|event| match event {
                    Event::Read(Ok(read)) if read > 0 => {
                        self.received(&chunk[..read]);
                        Event::ReadHandled
                    }
                    other => other,
                })
            })
            .await;
            self.handle(event);
            // A client that keeps us busy (pipelining as fast as it reads)
            // must not keep the executor from the other sessions: smol runs
            // them all on one thread, and nothing else makes us yield.
            events_in_a_row += 1;
            if events_in_a_row == EVENTS_BEFORE_YIELD {
                events_in_a_row = 0;
                yield_now().await;
            }
        }
        // Best effort: the last replies (a 421, a 221) before the socket goes.
        if !self.unwritten.is_empty() && !self.writer_shut {
            let flush = std::future::poll_fn(|cx| {
                while !self.unwritten.is_empty() {
                    match self
                        .shared
                        .runtime
                        .poll_write(&self.control, cx, &self.unwritten)
                    {
                        Poll::Ready(Ok(written)) if written > 0 => {
                            self.unwritten.drain(..written);
                        }
                        Poll::Ready(_) => break,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Poll::Ready(())
            });
            let limit = self
                .shared
                .runtime
                .sleep_until(self.shared.runtime.now() + CLOSE_LINGER);
            race(flush, limit).await;
        }
    }

    /// Carries out the session's outputs until it waits; `false` once the
    /// session is finished.
    fn drain(&mut self) -> bool {
        loop {
            match self.session.poll_output() {
                Output::Reply(reply) => self.write(&reply.to_bytes()),
                Output::StartTls => self.start_tls(),
                Output::CheckLogin(login) => self.check_login(login),
                Output::Listen => self.listen(),
                Output::Connect(target) => {
                    self.connecting = Some((target, self.shared.runtime.connect(target)));
                }
                Output::AcceptDataConnection => {
                    let protected = self.session.is_data_protected();
                    self.data_connection = self.just_connected.take().map(|connection| {
                        self.prepare(DataConnection::Clear(connection), protected)
                    });
                    // One connection per listener: the port is free again.
                    self.listener = None;
                }
                Output::RefuseDataConnection => self.just_connected = None,
                Output::Receive(request) => self.receive(request),
                Output::Send {
                    transfer,
                    bytes,
                    tls,
                } => match self.data_connection.take() {
                    Some(connection) => {
                        let connection = self.prepare(connection, tls);
                        let runtime = &self.shared.runtime;
                        let stall = self.shared.session_config.transfer_stall_timeout;
                        let sending = receive::send(runtime, connection, bytes, stall);
                        self.receiving = Some((transfer, sending));
                    }
                    None => {
                        let end = TransferEnd::Reset;
                        let event = DataEvent::TransferEnded {
                            upload: transfer,
                            end,
                        };
                        self.feed(Input::Data(event));
                    }
                },
                Output::AbortTransfer(_) => self.receiving = None,
                Output::Discard(upload) => {
                    self.spooled.remove(&upload);
                }
                Output::CloseData => {
                    self.listener = None;
                    self.data_connection = None;
                    self.connecting = None;
                }
                Output::Process(request) => self.process(request),
                Output::CancelProcessing(upload) => {
                    // Dropping the task's future cancels it; dropping the spool
                    // file deletes it, now.
                    self.processing.retain(|(id, _, _)| *id != upload);
                }
                Output::CloseControl => {
                    if let Some(tls) = &mut self.tls {
                        tls.send_close_notify();
                        self.flush_tls();
                    }
                    self.reading = false;
                    self.closing_since = Some(self.shared.runtime.now());
                }
                Output::Wait(deadline) => {
                    self.deadline = deadline;
                    return true;
                }
                Output::Finished => return false,
                // Outputs of later versions of the core this adapter does not
                // know yet: nothing to do.
                _ => {}
            }
        }
    }

    /// Starts checking `login` once the throttle lets it: at once, after the
    /// client's checks in flight (asking again every few milliseconds), or
    /// never (locked out).
    fn check_login(&mut self, login: proto::Login) {
        let now = self.shared.runtime.now();
        let verdict = self
            .shared
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .begin_attempt(self.peer.ip(), now);
        match verdict {
            Attempt::Go => {
                self.attempt = Some(InFlight {
                    shared: self.shared.clone(),
                    ip: self.peer.ip(),
                    ended: false,
                });
                let authenticator = self.shared.authenticator.clone();
                self.login = Some(
                    self.shared
                        .runtime
                        .spawn(async move { authenticator.authenticate(&login).await }),
                );
            }
            Attempt::Wait => {
                let retry = self.shared.runtime.sleep_until(now + LOGIN_RETRY);
                self.login_waiting = Some((login, retry));
            }
            _ => {
                tracing::warn!("login refused: the address is locked out");
                self.feed(Input::LoginChecked(proto::LoginVerdict::LockedOut));
            }
        }
    }

    fn listen(&mut self) {
        let ip = self.local.ip().to_canonical();
        let turn = self.shared.passive_turn.fetch_add(1, Ordering::Relaxed);
        let bound = receive::bind_passive(ip, self.shared.config.passive_ports, turn).and_then(
            |listener| match listener {
                Some(listener) => {
                    listener.set_nonblocking(true)?;
                    let addr = listener.local_addr()?;
                    Ok(Some((self.shared.runtime.listener(listener)?, addr)))
                }
                None => Ok(None),
            },
        );
        let event = match bound {
            Ok(Some((listener, addr))) => {
                self.listener = Some(listener);
                DataEvent::Listening(addr)
            }
            Ok(None) => {
                tracing::warn!("the passive port range is exhausted");
                DataEvent::ListenFailed
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a passive listener");
                DataEvent::ListenFailed
            }
        };
        self.feed(Input::Data(event));
    }

    fn receive(&mut self, request: ReceiveRequest) {
        let upload = request.upload;
        let Some(connection) = self.data_connection.take() else {
            let end = TransferEnd::Reset;
            return self.feed(Input::Data(DataEvent::TransferEnded { upload, end }));
        };
        match self.shared.spool.create() {
            Ok(spool) => {
                let connection = self.prepare(connection, request.tls);
                let limits = receive::Limits {
                    max_size: request.max_size,
                    stall_timeout: request.stall_timeout,
                    min_rate: request.min_rate,
                };
                let runtime = &self.shared.runtime;
                let transfer = receive::receive(runtime, connection, spool, limits);
                self.receiving = Some((upload, transfer));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot create a spool file");
                let end = TransferEnd::SpoolFailed(proto::SpoolFailure::Other);
                self.feed(Input::Data(DataEvent::TransferEnded { upload, end }));
            }
        }
    }

    fn process(&mut self, request: ProcessRequest) {
        let upload = request.upload;
        let (Some(spool), Some(processor)) = (self.spooled.remove(&upload), self.processor.clone())
        else {
            let result = Err(ProcessError::transient("the spooled file is gone"));
            return self.feed(Input::Processed { upload, result });
        };
        let upload_for_processor = Upload::new(request, spool.path().to_owned());
        let task = self
            .shared
            .runtime
            .spawn(async move { processor.process(&upload_for_processor).await });
        self.processing.push((upload, task, spool));
    }

    /// A data connection as the protection level wants it: a protected one
    /// starts its handshake (at once when accepted, so that clients that
    /// handshake before STOR are served). A connection whose protection
    /// changed after it was accepted (PROT C after the handshake began) is
    /// no use: it fails as reset.
    fn prepare(
        &self,
        connection: DataConnection<R::Stream>,
        protected: bool,
    ) -> DataConnection<R::Stream> {
        match (connection, protected, &self.tls_session) {
            (DataConnection::Clear(data), true, Some(tls)) => {
                let stall = self.shared.session_config.transfer_stall_timeout;
                let (config, require) = (tls.data.clone(), tls.require_resumption);
                let runtime = &self.shared.runtime;
                DataConnection::Protected(data_tls::start(runtime, data, stall, config, require))
            }
            (DataConnection::Protected(_), false, _) => {
                DataConnection::Protected(data_tls::failed(TransferEnd::Reset))
            }
            // Protection without TLS on the control connection cannot be
            // (PROT is refused before AUTH), but fail safe.
            (DataConnection::Clear(_), true, None) => {
                DataConnection::Protected(data_tls::failed(TransferEnd::TlsHandshakeFailed))
            }
            (connection, _, _) => connection,
        }
    }

    /// Once the session asked to close and its replies are written (or took
    /// too long), the control connection is shut.
    fn close_when_flushed(&mut self) {
        if self.closing_since.is_some() && self.unwritten.is_empty() && !self.writer_shut {
            let _ = socket2::SockRef::from(&self.control).shutdown(std::net::Shutdown::Write);
            self.writer_shut = true;
        }
    }

    /// Polls everything the connection waits for, in place.
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        chunk: &mut [u8],
    ) -> Poll<Event<A::Processor, R::Stream>> {
        let shared = self.shared.clone();
        let runtime = &shared.runtime;
        let read_enabled = self.reading
            && self.unwritten.len() < shared.session_config.max_unwritten_replies
            && self.session.wants_control_bytes();
        if read_enabled && let Poll::Ready(read) = runtime.poll_read(&self.control, cx, chunk) {
            return Poll::Ready(Event::Read(read));
        }
        if !self.unwritten.is_empty()
            && !self.writer_shut
            && let Poll::Ready(wrote) = runtime.poll_write(&self.control, cx, &self.unwritten)
        {
            return Poll::Ready(Event::Wrote(wrote));
        }
        if let Some(login) = &mut self.login
            && let Poll::Ready(verdict) = login.as_mut().poll(cx)
        {
            self.login = None;
            // A panicking authenticator rejects the login.
            return Poll::Ready(Event::LoginChecked(verdict.unwrap_or(Err(LoginRejected))));
        }
        if let Some((_, retry)) = &mut self.login_waiting
            && retry.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Event::LoginRetry);
        }
        match (&mut self.accept_paused, &self.listener) {
            (Some(pause), _) => {
                if pause.as_mut().poll(cx).is_ready() {
                    self.accept_paused = None;
                    return Poll::Ready(Event::AcceptResumed);
                }
            }
            (None, Some(listener)) => {
                if let Poll::Ready(accepted) = runtime.poll_accept(listener, cx) {
                    return Poll::Ready(Event::Accepted(accepted));
                }
            }
            (None, None) => {}
        }
        if let Some((target, connecting)) = &mut self.connecting
            && let Poll::Ready(connected) = connecting.as_mut().poll(cx)
        {
            let target = *target;
            self.connecting = None;
            return Poll::Ready(Event::Connected(target, connected));
        }
        if let Some((upload, receiving)) = &mut self.receiving
            && let Poll::Ready((end, spool)) = receiving.as_mut().poll(cx)
        {
            let upload = *upload;
            self.receiving = None;
            return Poll::Ready(Event::Received(upload, end, spool));
        }
        for index in 0..self.processing.len() {
            if let Poll::Ready(result) = self.processing[index].1.as_mut().poll(cx) {
                // The spool file goes before the reply: a client that got
                // its 226 finds the spool empty.
                let (upload, _, _spool) = self.processing.swap_remove(index);
                let result = result.unwrap_or_else(|| {
                    tracing::error!("the processor panicked");
                    Err(ProcessError::transient("the processor panicked"))
                });
                return Poll::Ready(Event::Processed(upload, result));
            }
        }
        if let Some(deadline) = self.deadline {
            let timer = match &mut self.timer {
                Some((at, timer)) if *at == deadline => timer,
                slot => &mut slot.insert((deadline, runtime.sleep_until(deadline))).1,
            };
            if timer.as_mut().poll(cx).is_ready() {
                self.timer = None;
                return Poll::Ready(Event::Deadline);
            }
        }
        if let (Some(since), false) = (self.closing_since, self.writer_shut) {
            let linger = self
                .linger
                .get_or_insert_with(|| runtime.sleep_until(since + CLOSE_LINGER));
            if linger.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::CloseLingerExpired);
            }
        }
        if let Some(shutdown) = &mut self.shutdown
            && shutdown.as_mut().poll(cx).is_ready()
        {
            self.shutdown = None;
            return Poll::Ready(Event::Shutdown);
        }
        Poll::Pending
    }

    fn handle(&mut self, event: Event<A::Processor, R::Stream>) {
        match event {
            Event::Read(Ok(0)) => {
                // The client may still read: what it sent gets answered.
                self.reading = false;
                self.feed(Input::ControlEof);
            }
            Event::Read(Ok(_)) | Event::ReadHandled => {}
            Event::Read(Err(_)) => {
                self.reading = false;
                self.feed(Input::ControlClosed);
            }
            Event::Wrote(Ok(written)) if written > 0 => {
                self.unwritten.drain(..written);
                // A burst of replies (a pipelined batch, a long FEAT) does
                // not stay allocated in a session that then sits idle.
                if self.unwritten.is_empty() && self.unwritten.capacity() > READ_CHUNK {
                    self.unwritten = Vec::new();
                }
                // The session runs no more commands while too much waits.
                self.feed(Input::Unwritten(self.unwritten.len()));
            }
            Event::Wrote(_) => {
                // The client is gone: nothing more can be written to it.
                self.unwritten.clear();
                self.writer_shut = true;
                self.reading = false;
                self.feed(Input::ControlClosed);
            }
            Event::LoginChecked(verdict) => {
                if let Some(attempt) = self.attempt.take() {
                    attempt.end(verdict.is_ok());
                }
                let verdict = match verdict {
                    Ok(processor) => {
                        let profile = processor.profile();
                        self.processor = Some(Arc::new(processor));
                        proto::LoginVerdict::Accepted { profile }
                    }
                    Err(LoginRejected) => proto::LoginVerdict::Rejected,
                };
                self.feed(Input::LoginChecked(verdict));
                if let Some(user) = self.session.user() {
                    let user = String::from_utf8_lossy(user);
                    tracing::Span::current().record("user", &*user);
                }
            }
            Event::Accepted(Ok((stream, peer))) => {
                self.just_connected = Some(stream);
                // The verdict (accept or refuse) is the next output.
                self.feed(Input::Data(DataEvent::Connected { peer }));
            }
            Event::Accepted(Err(error)) => {
                // Out of file descriptors, say: the pending connection stays
                // in the backlog, so back off instead of spinning on it.
                tracing::warn!(%error, "accepting a data connection failed");
                let runtime = &self.shared.runtime;
                self.accept_paused = Some(runtime.sleep_until(runtime.now() + ACCEPT_BACKOFF));
            }
            Event::Connected(target, Ok(stream)) => {
                self.just_connected = Some(stream);
                self.feed(Input::Data(DataEvent::Connected { peer: target }));
            }
            Event::Connected(_, Err(error)) => {
                tracing::debug!(%error, "active data connection failed");
                self.feed(Input::Data(DataEvent::ConnectFailed));
            }
            Event::Received(upload, end, spool) => {
                if let Some(spool) = spool {
                    self.spooled.insert(upload, spool);
                }
                self.feed(Input::Data(DataEvent::TransferEnded { upload, end }));
            }
            Event::Processed(upload, result) => self.feed(Input::Processed { upload, result }),
            Event::AcceptResumed => {}
            Event::LoginRetry => {
                if let Some((login, _)) = self.login_waiting.take() {
                    self.check_login(login);
                }
            }
            Event::Deadline => self.feed(Input::Timeout),
            Event::Shutdown => self.feed(Input::Shutdown),
            Event::CloseLingerExpired => {
                // The client does not read its last replies: drop them, and
                // the connection with them.
                self.unwritten.clear();
                self.writer_shut = true;
                let _ = socket2::SockRef::from(&self.control).shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Writes control bytes: through TLS once it is on.
    fn write(&mut self, plaintext: &[u8]) {
        match &mut self.tls {
            Some(tls) => {
                if tls.writer().write_all(plaintext).is_ok() {
                    self.flush_tls();
                }
            }
            None => self.unwritten.extend_from_slice(plaintext),
        }
    }

    /// The session answered AUTH TLS with 234 (already written in
    /// plaintext): from here on everything goes through TLS.
    fn start_tls(&mut self) {
        let require = self.shared.config.tls_require_session_reuse;
        let started = self
            .shared
            .tls
            .as_ref()
            .map(|tls| session_tls(tls, require));
        match started {
            Some(Ok((connection, configs))) => {
                self.tls = Some(connection);
                self.tls_session = Some(configs);
            }
            _ => {
                tracing::warn!("cannot start TLS");
                self.reading = false;
                self.feed(Input::ControlClosed);
            }
        }
    }

    /// Control bytes arrived.
    fn received(&mut self, bytes: &[u8]) {
        if self.tls.is_some() {
            self.tls_received(bytes);
        } else {
            let now = self.shared.runtime.now();
            self.session.handle(now, Input::ControlBytes(bytes));
        }
    }

    /// TLS records arrived: decrypt what can be, hand the plaintext to the
    /// session, and queue what TLS wants to send (handshake, alerts).
    fn tls_received(&mut self, mut records: &[u8]) {
        let Some(tls) = &mut self.tls else { return };
        let mut plaintext = Vec::new();
        let mut failed = false;
        let mut closed = false;
        while !records.is_empty() && !failed && !closed {
            match tls.read_tls(&mut records) {
                // rustls takes nothing more after the peer's close_notify.
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            match tls.process_new_packets() {
                Ok(state) => {
                    let available = state.plaintext_bytes_to_read();
                    let start = plaintext.len();
                    plaintext.resize(start + available, 0);
                    if tls.reader().read_exact(&mut plaintext[start..]).is_err() {
                        plaintext.truncate(start);
                    }
                    closed |= state.peer_has_closed();
                }
                Err(error) => {
                    tracing::debug!(%error, "TLS failed on the control connection");
                    failed = true;
                }
            }
        }
        // The handshake's answers, or the alert that says why it failed.
        self.flush_tls();
        if !plaintext.is_empty() {
            let now = self.shared.runtime.now();
            self.session.handle(now, Input::ControlBytes(&plaintext));
        }
        if failed {
            self.reading = false;
            self.feed(Input::ControlClosed);
        } else if closed {
            self.reading = false;
            self.feed(Input::ControlEof);
        }
    }

    /// Moves what TLS has to send into the bytes to write.
    fn flush_tls(&mut self) {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                if tls.write_tls(&mut self.unwritten).is_err() {
                    break;
                }
            }
        }
    }

    fn feed(&mut self, input: Input<'_>) {
        let now = self.shared.runtime.now();
        self.session.handle(now, input);
    }
}

/// TLS for a new control connection: its connection, and the
/// configurations of its data connections.
fn session_tls(
    tls: &Tls,
    require_resumption: bool,
) -> Result<(rustls::ServerConnection, SessionTls), rustls::Error> {
    let configs = SessionTls::new(tls, require_resumption)?;
    let connection = rustls::ServerConnection::new(configs.control.clone())?;
    Ok((connection, configs))
}

/// A login check the throttle counts; ended as a failure if dropped before
/// its verdict (the client left mid-check: no free guesses).
struct InFlight<A: Authenticator, R: Runtime> {
    shared: Arc<Shared<A, R>>,
    ip: std::net::IpAddr,
    ended: bool,
}

impl<A: Authenticator, R: Runtime> InFlight<A, R> {
    fn end(mut self, succeeded: bool) {
        self.finish(succeeded);
    }

    fn finish(&mut self, succeeded: bool) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let now = self.shared.runtime.now();
        self.shared
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .end_attempt(self.ip, now, succeeded);
    }
}

impl<A: Authenticator, R: Runtime> Drop for InFlight<A, R> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Returns `Pending` once (after asking to be woken), so that the executor
/// runs other tasks first.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Whichever of two futures finishes first.
async fn race(first: impl Future<Output = ()>, second: impl Future<Output = ()>) {
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    std::future::poll_fn(|cx| {
        if first.as_mut().poll(cx).is_ready() || second.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}
