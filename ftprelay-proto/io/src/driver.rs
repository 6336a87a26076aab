//! The driver of one control connection: the loop that carries out the
//! session's outputs and feeds it the events that come, moving bytes,
//! running timers and calling the application's code. Every decision comes
//! from [`proto::Session`]; every runtime primitive from [`Runtime`]; the
//! control stream and the data channel are `control.rs` and `data.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use proto::proxy::starts_like_proxy_header;
use proto::{
    Authenticator, DataEvent, FileProcessor, Input, LoginRejected, Output, ProcessError,
    ProcessRequest, ReceiveRequest, TransferEnd, TransferId, Upload,
};

use crate::control::{ControlStream, READ_CHUNK};
use crate::data::{DataChannel, DataNews};
use crate::data_tls;
use crate::observe::{LoginOutcome, Observation};
use crate::proxy::{self, Endpoints};
use crate::receive::{self, DataConnection};
use crate::runtime::{BoxFuture, Runtime};
use crate::spool::SpoolFile;
use crate::state::{ConnectionGuard, Shared};
use crate::throttle::Attempt;
use crate::tls::{SessionTls, Tls};

/// How often a login waiting for its client's other checks asks again.
const LOGIN_RETRY: Duration = Duration::from_millis(20);
/// Events handled in a row before the driver lets other tasks run.
const EVENTS_BEFORE_YIELD: u32 = 32;

/// A login being checked: the processor, or the rejection (`None` if the
/// authenticator panicked).
type LoginCheck<P> = BoxFuture<Option<Result<P, LoginRejected>>>;
/// A processor running (`None` if it panicked; dropping it cancels it), and
/// the spool file it works on: kept here, not in the processor's task, so
/// that it is deleted the moment processing ends or is cancelled (a
/// cancelled task is dropped only later), before any reply. Then when it
/// started, for the observer.
type Processing = (
    TransferId,
    BoxFuture<Option<Result<(), ProcessError>>>,
    SpoolFile,
    Instant,
);
/// A hold running (`None` if it panicked; dropping it cancels it), and when
/// it started. Its spool file stays in `spooled`: the upload is processed
/// or discarded later.
type Holding = (
    TransferId,
    BoxFuture<Option<Result<(), ProcessError>>>,
    Instant,
);

/// The whole life of an admitted connection, in a tracing span of its own
/// (peer, the proxy it came through if any, then user): counted by `guard`
/// until it ends. Spawn it.
pub(crate) fn session<A, R>(
    shared: Arc<Shared<A, R>>,
    guard: ConnectionGuard<A, R>,
    control: R::Stream,
    endpoints: Endpoints,
    implicit_tls: bool,
    shutdown: BoxFuture<()>,
) -> impl Future<Output = ()> + Send + 'static
where
    A: Authenticator,
    R: Runtime,
    R::Stream: AsFd,
{
    let peer = endpoints.peer;
    let id = shared
        .session_ids
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let span = tracing::info_span!(
        "session",
        id,
        %peer,
        proxy = tracing::field::Empty,
        user = tracing::field::Empty
    );
    if let Some(proxy) = endpoints.proxy {
        span.record("proxy", tracing::field::display(proxy));
    }
    tracing::Instrument::instrument(
        async move {
            let _guard = guard;
            tracing::debug!("connected");
            serve(shared, control, endpoints, implicit_tls, shutdown).await;
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
    endpoints: Endpoints,
    implicit_tls: bool,
    shutdown: BoxFuture<()>,
) where
    A: Authenticator,
    R: Runtime,
    R::Stream: AsFd,
{
    let now = shared.runtime.now();
    let Endpoints {
        local,
        client_local,
        peer,
        proxy,
    } = endpoints;
    let mut session = proto::Session::new(shared.session_config.clone(), now, client_local, peer)
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
    // With the PROXY protocol on, a peer that is not a trusted proxy is
    // served as it is; its first bytes are watched for a header it may not
    // send.
    let sniffing = (!shared.config.proxy_from.is_empty() && proxy.is_none()).then(Vec::new);
    let mut driver = Driver {
        sniffing,
        control: ControlStream::new(control, tls),
        data: DataChannel::new(),
        shared,
        session,
        local,
        peer,
        tls_session,
        deadline: None,
        timer: None,
        processor: None,
        login: None,
        attempt: None,
        login_waiting: None,
        spooled: HashMap::new(),
        processing: Vec::new(),
        holding: Vec::new(),
        held: HashMap::new(),
        receiving: None,
        shutdown: Some(shutdown),
    };
    // From here on the session knows how much of its replies waits.
    driver.feed(Input::Unwritten(0));
    driver.run().await;
}

struct Driver<A: Authenticator, R: Runtime> {
    shared: Arc<Shared<A, R>>,
    session: proto::Session,
    /// The relay's end of the control socket.
    local: SocketAddr,
    /// The client (named by a proxy's header, if it came through one).
    peer: SocketAddr,
    /// The first control bytes of a peer that may not send a PROXY header,
    /// held until they tell whether they start one (at most 11 bytes).
    sniffing: Option<Vec<u8>>,
    control: ControlStream<R>,
    data: DataChannel<R>,
    /// The TLS configurations of this control connection and its data
    /// connections, once TLS started.
    tls_session: Option<SessionTls>,
    /// The session's deadline, and the timer that waits for it: one timer,
    /// moved to each new deadline.
    deadline: Option<Instant>,
    timer: Option<(Option<Instant>, R::Sleep)>,
    processor: Option<Arc<A::Processor>>,
    login: Option<LoginCheck<A::Processor>>,
    /// The login check in flight, counted by the throttle until it ends.
    attempt: Option<InFlight<A, R>>,
    /// A login waiting for the client's other checks, and when to ask again.
    login_waiting: Option<(proto::Login, R::Sleep)>,
    /// Complete uploads between their transfer's end and the session's
    /// verdict (process or discard).
    spooled: HashMap<TransferId, SpoolFile>,
    /// Processors running; dropping one cancels it.
    processing: Vec<Processing>,
    /// Holds running (store-and-forward processors); dropping one cancels it.
    holding: Vec<Holding>,
    /// Uploads given to the processor's `hold` (running or done) and not
    /// processed yet: the processor forgets them if they are discarded.
    held: HashMap<TransferId, Upload>,
    /// The upload whose data is being received, if any: its transfer's end
    /// is observed (a listing's is not).
    receiving: Option<TransferId>,
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
    Data(DataNews<D>),
    Processed(TransferId, Result<(), ProcessError>),
    Held(TransferId, Result<(), ProcessError>),
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
            self.control.shut_when_flushed();
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
        self.control.flush_last(&self.shared.runtime).await;
    }

    /// Carries out the session's outputs until it waits; `false` once the
    /// session is finished.
    fn drain(&mut self) -> bool {
        loop {
            match self.session.poll_output() {
                Output::Reply(reply) => self.control.write(&reply.to_bytes()),
                Output::StartTls => self.start_tls(),
                Output::CheckLogin(login) => self.check_login(login),
                Output::Listen => {
                    let ip = self.local.ip().to_canonical();
                    let turn = self.shared.passive_turn.fetch_add(1, Ordering::Relaxed);
                    let event = self.data.listen(&self.shared, ip, self.peer.ip(), turn);
                    self.feed(Input::Data(event));
                }
                Output::Connect(target) => self.data.connect(&self.shared.runtime, target),
                Output::AcceptDataConnection => {
                    let protected = self.session.is_data_protected();
                    let (shared, tls) = (&self.shared, &self.tls_session);
                    self.data
                        .accept(|connection| prepare(shared, tls, connection, protected));
                }
                Output::RefuseDataConnection => self.data.refuse(),
                Output::Receive(request) => self.receive(request),
                Output::Send {
                    transfer,
                    bytes,
                    tls,
                } => match self.data.take_connection() {
                    Some(connection) => {
                        let connection = prepare(&self.shared, &self.tls_session, connection, tls);
                        let runtime = &self.shared.runtime;
                        let stall = self.shared.session_config.transfer_stall_timeout;
                        let sending = receive::send(runtime, connection, bytes, stall);
                        self.data.run((transfer, sending));
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
                Output::AbortTransfer(_) => self.data.abort(),
                Output::Discard(upload) => self.discard(upload),
                Output::CloseData => self.data.close(),
                Output::Process(request) => self.process(request),
                Output::CheckAdmission(upload) => {
                    let result = self.admit();
                    if let Err(error) = &result {
                        self.shared.observe(&Observation::NotAdmitted(error));
                    }
                    self.feed(Input::Admission { upload, result });
                }
                Output::Hold(request) => self.hold(request),
                Output::CancelProcessing(upload) => {
                    // Dropping the task's future cancels it; dropping the spool
                    // file deletes it, now.
                    self.processing.retain(|(id, ..)| *id != upload);
                }
                Output::CloseControl => self.control.close(self.shared.runtime.now()),
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
                let outcome = LoginOutcome::LockedOut;
                self.shared.observe(&Observation::Login(outcome));
                self.feed(Input::LoginChecked(proto::LoginVerdict::LockedOut));
            }
        }
    }

    fn receive(&mut self, request: ReceiveRequest) {
        let upload = request.upload;
        let Some(connection) = self.data.take_connection() else {
            let end = TransferEnd::Reset;
            self.shared.observe(&Observation::Received(&end));
            return self.feed(Input::Data(DataEvent::TransferEnded { upload, end }));
        };
        match self.shared.spool.create() {
            Ok(spool) => {
                let connection = prepare(&self.shared, &self.tls_session, connection, request.tls);
                let limits = receive::Limits {
                    max_size: request.max_size,
                    stall_timeout: request.stall_timeout,
                    min_rate: request.min_rate,
                    throttle: crate::bandwidth::Throttle::new(
                        request.max_rate,
                        self.shared.total_upload_rate.clone(),
                    ),
                };
                let runtime = &self.shared.runtime;
                let transfer = receive::receive(runtime, connection, spool, limits);
                self.data.run((upload, transfer));
                self.receiving = Some(upload);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot create a spool file");
                let end = TransferEnd::SpoolFailed(proto::SpoolFailure::Other);
                self.shared.observe(&Observation::Received(&end));
                self.feed(Input::Data(DataEvent::TransferEnded { upload, end }));
            }
        }
    }

    fn process(&mut self, request: ProcessRequest) {
        let upload = request.upload;
        // Held before: processed now, nothing to forget any more.
        self.held.remove(&upload);
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
        let started = self.shared.runtime.now();
        self.processing.push((upload, task, spool, started));
    }

    /// Whether the processor takes one more upload now. Asked on this task:
    /// `admit` is meant to answer at once. A panic is a transient failure.
    fn admit(&self) -> Result<(), ProcessError> {
        let Some(processor) = &self.processor else {
            return Err(ProcessError::transient("no processor to admit the upload"));
        };
        let admitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| processor.admit()));
        admitted.unwrap_or_else(|_| {
            tracing::error!("the processor's admit panicked");
            Err(ProcessError::transient("the processor's admit panicked"))
        })
    }

    /// Runs the processor's `hold` on a held upload. Its spool file stays
    /// in `spooled` for the upload's later `Process` or `Discard`.
    fn hold(&mut self, request: ProcessRequest) {
        let upload = request.upload;
        let (Some(spool), Some(processor)) = (self.spooled.get(&upload), self.processor.clone())
        else {
            let result = Err(ProcessError::transient("the spooled file is gone"));
            return self.feed(Input::Held { upload, result });
        };
        let held = Upload::new(request, spool.path().to_owned());
        self.held.insert(upload, held.clone());
        let task = self
            .shared
            .runtime
            .spawn(async move { processor.hold(&held).await });
        let started = self.shared.runtime.now();
        self.holding.push((upload, task, started));
    }

    /// Deletes an upload's spool file. A held one is forgotten by the
    /// processor first (its hold cancelled if still running), while its
    /// spool file still exists.
    fn discard(&mut self, upload: TransferId) {
        self.holding.retain(|(id, ..)| *id != upload);
        if let (Some(held), Some(processor)) = (self.held.remove(&upload), &self.processor) {
            let forgot = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                processor.forget(&held);
            }));
            if forgot.is_err() {
                tracing::error!("the processor's forget panicked");
            }
        }
        self.spooled.remove(&upload);
    }

    /// Polls everything the connection waits for, in place.
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        chunk: &mut [u8],
    ) -> Poll<Event<A::Processor, R::Stream>> {
        let shared = self.shared.clone();
        let runtime = &shared.runtime;
        let read_enabled = self
            .control
            .wants_read(shared.session_config.max_unwritten_replies)
            && self.session.wants_control_bytes();
        if read_enabled && let Poll::Ready(read) = self.control.poll_read(runtime, cx, chunk) {
            return Poll::Ready(Event::Read(read));
        }
        if let Poll::Ready(wrote) = self.control.poll_write(runtime, cx) {
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
            && Pin::new(retry).poll(cx).is_ready()
        {
            return Poll::Ready(Event::LoginRetry);
        }
        let trusted = |ip| proxy::is_trusted(&shared.config, ip);
        if let Poll::Ready(news) = self.data.poll(runtime, cx, trusted) {
            return Poll::Ready(Event::Data(news));
        }
        for index in 0..self.processing.len() {
            if let Poll::Ready(result) = self.processing[index].1.as_mut().poll(cx) {
                // The spool file goes before the reply: a client that got
                // its 226 finds the spool empty.
                let (upload, _, _spool, started) = self.processing.swap_remove(index);
                let result = result.unwrap_or_else(|| {
                    tracing::error!("the processor panicked");
                    Err(ProcessError::transient("the processor panicked"))
                });
                let took = runtime.now().saturating_duration_since(started);
                let result_seen = result.as_ref().map(|_| ());
                shared.observe(&Observation::Processed {
                    result: result_seen,
                    took,
                });
                return Poll::Ready(Event::Processed(upload, result));
            }
        }
        for index in 0..self.holding.len() {
            if let Poll::Ready(result) = self.holding[index].1.as_mut().poll(cx) {
                let (upload, _, started) = self.holding.swap_remove(index);
                let result = match result {
                    Some(result) => {
                        if result.is_err() {
                            // A hold that failed kept nothing to forget.
                            self.held.remove(&upload);
                        }
                        result
                    }
                    None => {
                        tracing::error!("the processor's hold panicked");
                        Err(ProcessError::transient("the processor's hold panicked"))
                    }
                };
                let took = runtime.now().saturating_duration_since(started);
                let result_seen = result.as_ref().map(|_| ());
                shared.observe(&Observation::Held {
                    result: result_seen,
                    took,
                });
                return Poll::Ready(Event::Held(upload, result));
            }
        }
        if self.poll_deadline(cx).is_ready() {
            return Poll::Ready(Event::Deadline);
        }
        if self.control.poll_linger(runtime, cx).is_ready() {
            return Poll::Ready(Event::CloseLingerExpired);
        }
        if let Some(shutdown) = &mut self.shutdown
            && shutdown.as_mut().poll(cx).is_ready()
        {
            self.shutdown = None;
            return Poll::Ready(Event::Shutdown);
        }
        Poll::Pending
    }

    /// Resolves at the session's deadline. One timer serves every deadline
    /// of the session: it is moved, not made anew.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let runtime = &self.shared.runtime;
        let (armed, timer) = self
            .timer
            .get_or_insert_with(|| (Some(deadline), runtime.sleep_until(deadline)));
        if *armed != Some(deadline) {
            runtime.reset(timer, deadline);
            *armed = Some(deadline);
        }
        if Pin::new(timer).poll(cx).is_ready() {
            // Fired: the next deadline moves it again.
            *armed = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn handle(&mut self, event: Event<A::Processor, R::Stream>) {
        match event {
            Event::Read(Ok(0)) => {
                // The client may still read: what it sent gets answered.
                if let Some(held) = self.sniffing.take() {
                    self.received_bytes(&held);
                }
                self.control.stop_reading();
                self.feed(Input::ControlEof);
            }
            Event::Read(Ok(_)) | Event::ReadHandled => {}
            Event::Read(Err(_)) => {
                self.control.stop_reading();
                self.feed(Input::ControlClosed);
            }
            Event::Wrote(Ok(written)) if written > 0 => {
                self.control.wrote(written);
                // The session runs no more commands while too much waits.
                self.feed(Input::Unwritten(self.control.unwritten()));
            }
            Event::Wrote(_) => {
                // The client is gone: nothing more can be written to it.
                self.control.write_failed();
                self.feed(Input::ControlClosed);
            }
            Event::LoginChecked(verdict) => {
                if let Some(attempt) = self.attempt.take() {
                    attempt.end(verdict.is_ok());
                }
                let outcome = match verdict {
                    Ok(_) => LoginOutcome::Accepted,
                    Err(_) => LoginOutcome::Rejected,
                };
                self.shared.observe(&Observation::Login(outcome));
                let verdict = match verdict {
                    Ok(processor) => {
                        let profile = processor.profile();
                        let store_and_forward = processor.store_and_forward();
                        self.processor = Some(Arc::new(processor));
                        proto::LoginVerdict::Accepted {
                            profile,
                            store_and_forward,
                        }
                    }
                    Err(LoginRejected) => proto::LoginVerdict::Rejected,
                };
                self.feed(Input::LoginChecked(verdict));
                if let Some(user) = self.session.user() {
                    let user = String::from_utf8_lossy(user);
                    tracing::Span::current().record("user", &*user);
                }
            }
            Event::Data(news) => self.data_news(news),
            Event::Processed(upload, result) => self.feed(Input::Processed { upload, result }),
            Event::Held(upload, result) => self.feed(Input::Held { upload, result }),
            Event::LoginRetry => {
                if let Some((login, _)) = self.login_waiting.take() {
                    self.check_login(login);
                }
            }
            Event::Deadline => self.feed(Input::Timeout),
            Event::Shutdown => self.feed(Input::Shutdown),
            // The client does not read its last replies: drop them, and the
            // connection with them.
            Event::CloseLingerExpired => self.control.abandon(),
        }
    }

    fn data_news(&mut self, news: DataNews<R::Stream>) {
        match news {
            DataNews::Accepted(stream, peer) => {
                self.data.arrived(stream);
                // The verdict (accept or refuse) is the next output.
                self.feed(Input::Data(DataEvent::Connected { peer }));
            }
            DataNews::Connected(target, Ok(stream)) => {
                self.data.arrived(stream);
                self.feed(Input::Data(DataEvent::Connected { peer: target }));
            }
            DataNews::Connected(_, Err(error)) => {
                tracing::debug!(%error, "active data connection failed");
                self.feed(Input::Data(DataEvent::ConnectFailed));
            }
            DataNews::TransferEnded(upload, end, spool) => {
                if self.receiving == Some(upload) {
                    self.receiving = None;
                    self.shared.observe(&Observation::Received(&end));
                }
                if let Some(spool) = spool {
                    self.spooled.insert(upload, spool);
                }
                self.feed(Input::Data(DataEvent::TransferEnded { upload, end }));
            }
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
                self.control.start_tls(connection);
                self.tls_session = Some(configs);
            }
            _ => {
                tracing::warn!("cannot start TLS");
                self.control.stop_reading();
                self.feed(Input::ControlClosed);
            }
        }
    }

    /// Control bytes arrived. The first ones of a peer that may not send a
    /// PROXY header are held until they tell whether they start one.
    fn received(&mut self, bytes: &[u8]) {
        let Some(mut held) = self.sniffing.take() else {
            return self.received_bytes(bytes);
        };
        if held.is_empty() && starts_like_proxy_header(bytes) == Some(false) {
            return self.received_bytes(bytes);
        }
        held.extend_from_slice(bytes);
        match starts_like_proxy_header(&held) {
            None => self.sniffing = Some(held),
            Some(false) => self.received_bytes(&held),
            Some(true) => self.refuse_proxy_header(),
        }
    }

    /// A PROXY header from a peer not trusted to send one: it is not taken
    /// as FTP (nor believed); `421`, and the connection closes.
    fn refuse_proxy_header(&mut self) {
        tracing::warn!("PROXY header from a peer not trusted to send one: closing");
        let text = "PROXY protocol header not accepted from your address.";
        let reply = proto::Reply::new(proto::ReplyCode::SERVICE_NOT_AVAILABLE, text);
        self.control.write(&reply.to_bytes());
        self.control.close(self.shared.runtime.now());
        self.feed(Input::ControlClosed);
    }

    /// Control bytes for the session: as they are, or TLS records to
    /// decrypt first.
    fn received_bytes(&mut self, bytes: &[u8]) {
        if !self.control.is_tls() {
            return self.feed(Input::ControlBytes(bytes));
        }
        let decrypted = self.control.decrypt(bytes);
        if !decrypted.plaintext.is_empty() {
            self.feed(Input::ControlBytes(&decrypted.plaintext));
        }
        if let Some(cleanly) = decrypted.ended {
            self.control.stop_reading();
            self.feed(if cleanly {
                Input::ControlEof
            } else {
                Input::ControlClosed
            });
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

/// A data connection as the protection level wants it: a protected one
/// starts its handshake (at once when accepted, so that clients that
/// handshake before STOR are served). A connection whose protection
/// changed after it was accepted (PROT C after the handshake began) is
/// no use: it fails as reset.
fn prepare<A: Authenticator, R: Runtime>(
    shared: &Shared<A, R>,
    tls_session: &Option<SessionTls>,
    connection: DataConnection<R::Stream>,
    protected: bool,
) -> DataConnection<R::Stream> {
    match (connection, protected, tls_session) {
        (DataConnection::Clear(data), true, Some(tls)) => {
            let stall = shared.session_config.transfer_stall_timeout;
            let (config, require) = (tls.data.clone(), tls.require_resumption);
            let runtime = &shared.runtime;
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
