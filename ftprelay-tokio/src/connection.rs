//! The driver of one control connection: it moves bytes, runs timers and
//! calls the application's code. Every decision comes from
//! [`proto::Session`].

use std::collections::HashMap;
use std::future::{Future, pending};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use proto::{
    Authenticator, DataEvent, FileProcessor as _, Input, LoginRejected, Output, ProcessError,
    ProcessRequest, ReceiveRequest, TransferEnd, Upload, UploadId,
};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::data;
use crate::relay::Shared;
use crate::spool::SpoolFile;

/// Control bytes read at once.
const READ_BUFFER: usize = 4096;
/// Stop reading commands while this many reply bytes wait to be written:
/// a client that does not read its replies does not grow our memory.
const MAX_UNWRITTEN: usize = 64 * 1024;
/// How long the last replies may take to reach a client before the control
/// connection is dropped anyway.
const CLOSE_LINGER: Duration = Duration::from_secs(10);
/// How long to wait before accepting again after accepting failed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// An upload being received: how it ended, and its spool file if complete.
type Receiving = (UploadId, BoxFuture<(TransferEnd, Option<SpoolFile>)>);

/// Serves one control connection until its session is finished.
pub(crate) async fn serve<A: Authenticator>(
    shared: Arc<Shared<A>>,
    stream: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    // A 226 must not wait behind Nagle's algorithm.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    // ABOR comes after a Telnet Synch whose DM byte is sent as TCP urgent
    // data: keep it in the stream, where the framer strips it.
    if let Err(error) = socket2::SockRef::from(&stream).set_out_of_band_inline(true) {
        tracing::debug!(%error, "cannot set SO_OOBINLINE");
    }
    let (reader, writer) = stream.into_split();
    let session = proto::Session::new(shared.session_config.clone(), now(), local, peer);
    let mut connection = Connection {
        shared,
        session,
        local,
        reader,
        writer,
        unwritten: Vec::new(),
        read_buffer: vec![0; READ_BUFFER].into_boxed_slice(),
        reading: true,
        closing_since: None,
        writer_shut: false,
        deadline: None,
        processor: None,
        login: None,
        listener: None,
        data_connection: None,
        just_connected: None,
        connecting: None,
        receiving: None,
        spooled: HashMap::new(),
        processing: JoinSet::new(),
        processing_uploads: HashMap::new(),
        processing_handles: HashMap::new(),
        shutdown,
        shutdown_seen: false,
        accept_paused_until: None,
    };
    connection.run().await;
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

struct Connection<A: Authenticator> {
    shared: Arc<Shared<A>>,
    session: proto::Session,
    local: SocketAddr,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Encoded replies not yet written.
    unwritten: Vec<u8>,
    read_buffer: Box<[u8]>,
    /// Whether the control connection is still read.
    reading: bool,
    /// When the session asked to close the control connection.
    closing_since: Option<Instant>,
    writer_shut: bool,
    deadline: Option<Instant>,
    processor: Option<Arc<A::Processor>>,
    login: Option<JoinHandle<Result<A::Processor, LoginRejected>>>,
    listener: Option<TcpListener>,
    /// The accepted (or connected) data connection, until it is received.
    data_connection: Option<TcpStream>,
    /// A data connection reported to the session and awaiting its verdict.
    just_connected: Option<TcpStream>,
    connecting: Option<(SocketAddr, BoxFuture<io::Result<TcpStream>>)>,
    receiving: Option<Receiving>,
    /// Complete uploads between their transfer's end and the session's
    /// verdict (process or discard).
    spooled: HashMap<UploadId, SpoolFile>,
    processing: JoinSet<Result<(), ProcessError>>,
    processing_uploads: HashMap<tokio::task::Id, UploadId>,
    processing_handles: HashMap<UploadId, tokio::task::AbortHandle>,
    shutdown: watch::Receiver<bool>,
    shutdown_seen: bool,
    /// Accepting data connections failed: try again at this time.
    accept_paused_until: Option<Instant>,
}

impl<A: Authenticator> Drop for Connection<A> {
    fn drop(&mut self) {
        // A login check still running (a hanging directory server, say) is
        // not left behind, detached, for every connection that gave up.
        if let Some(login) = self.login.take() {
            login.abort();
        }
    }
}

/// What woke the connection up.
enum Event<P> {
    Readable(io::Result<()>),
    Wrote(io::Result<usize>),
    LoginChecked(Result<P, LoginRejected>),
    Accepted(io::Result<(TcpStream, SocketAddr)>),
    Connected(SocketAddr, io::Result<TcpStream>),
    Received(UploadId, TransferEnd, Option<SpoolFile>),
    Processed(Result<(tokio::task::Id, Result<(), ProcessError>), tokio::task::JoinError>),
    Deadline,
    Shutdown,
    CloseLingerExpired,
    AcceptResumed,
}

impl<A: Authenticator> Connection<A> {
    async fn run(&mut self) {
        loop {
            if !self.drain().await {
                break;
            }
            self.close_when_flushed().await;
            let event = self.next_event().await;
            self.handle(event).await;
        }
        // Best effort: the last replies (a 421, a 221) before the socket goes.
        if !self.unwritten.is_empty() && !self.writer_shut {
            let flush = self.writer.write_all(&self.unwritten);
            let _ = tokio::time::timeout(CLOSE_LINGER, flush).await;
        }
    }

    /// Carries out the session's outputs until it waits; `false` once the
    /// session is finished.
    async fn drain(&mut self) -> bool {
        loop {
            match self.session.poll_output() {
                Output::Reply(reply) => reply.encode(&mut self.unwritten),
                Output::CheckLogin(login) => {
                    let authenticator = self.shared.authenticator.clone();
                    self.login = Some(tokio::spawn(async move {
                        authenticator.authenticate(&login).await
                    }));
                }
                Output::Listen => self.listen().await,
                Output::Connect(target) => {
                    self.connecting = Some((target, Box::pin(data::connect(target))));
                }
                Output::AcceptDataConnection => {
                    self.data_connection = self.just_connected.take();
                    // One connection per listener: the port is free again.
                    self.listener = None;
                }
                Output::RefuseDataConnection => self.just_connected = None,
                Output::Receive(request) => self.receive(request),
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
                    if let Some(handle) = self.processing_handles.remove(&upload) {
                        handle.abort();
                    }
                }
                Output::CloseControl => {
                    self.reading = false;
                    self.closing_since = Some(Instant::now());
                }
                Output::Wait(deadline) => {
                    self.deadline = deadline.map(Instant::from_std);
                    return true;
                }
                Output::Finished => return false,
                // Outputs of later versions of the core this adapter does not
                // know yet: nothing to do.
                _ => {}
            }
        }
    }

    async fn listen(&mut self) {
        let ip = self.local.ip().to_canonical();
        let turn = self
            .shared
            .passive_turn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let event = match data::listen(ip, self.shared.config.passive_ports, turn).await {
            Ok(Some(listener)) => match listener.local_addr() {
                Ok(addr) => {
                    self.listener = Some(listener);
                    DataEvent::Listening(addr)
                }
                Err(_) => DataEvent::ListenFailed,
            },
            Ok(None) => {
                tracing::warn!("the passive port range is exhausted");
                DataEvent::ListenFailed
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a passive listener");
                DataEvent::ListenFailed
            }
        };
        self.session.handle(now(), Input::Data(event));
    }

    fn receive(&mut self, request: ReceiveRequest) {
        let ReceiveRequest {
            upload,
            max_size,
            stall_timeout,
        } = request;
        let Some(connection) = self.data_connection.take() else {
            let end = TransferEnd::Reset;
            self.session
                .handle(now(), Input::Data(DataEvent::TransferEnded { upload, end }));
            return;
        };
        match self.shared.spool.create() {
            Ok(spool) => {
                let transfer = data::receive(connection, spool, max_size, stall_timeout);
                self.receiving = Some((upload, Box::pin(transfer)));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot create a spool file");
                let end = TransferEnd::SpoolFailed(proto::SpoolFailure::Other);
                self.session
                    .handle(now(), Input::Data(DataEvent::TransferEnded { upload, end }));
            }
        }
    }

    fn process(&mut self, request: ProcessRequest) {
        let upload = request.upload;
        let (Some(spool), Some(processor)) = (self.spooled.remove(&upload), self.processor.clone())
        else {
            let result = Err(ProcessError::transient("the spooled file is gone"));
            self.session
                .handle(now(), Input::Processed { upload, result });
            return;
        };
        let upload_for_processor = Upload::new(request, spool.path().to_owned());
        let handle = self.processing.spawn(async move {
            let result = processor.process(&upload_for_processor).await;
            // Deleted before the reply is sent: a client that got its 226
            // finds the spool empty.
            drop(spool);
            result
        });
        self.processing_uploads.insert(handle.id(), upload);
        self.processing_handles.insert(upload, handle);
    }

    /// Once the session asked to close and its replies are written (or took
    /// too long), the control connection is shut.
    async fn close_when_flushed(&mut self) {
        if self.closing_since.is_some() && self.unwritten.is_empty() && !self.writer_shut {
            let _ = self.writer.shutdown().await;
            self.writer_shut = true;
        }
    }

    async fn next_event(&mut self) -> Event<A::Processor> {
        let read_enabled = self.reading
            && self.unwritten.len() < MAX_UNWRITTEN
            && self.session.wants_control_bytes();
        let write_enabled = !self.unwritten.is_empty() && !self.writer_shut;
        let linger = self
            .closing_since
            .filter(|_| !self.writer_shut)
            .map(|since| since + CLOSE_LINGER);
        let shutdown_pending = !self.shutdown_seen;
        let processing = !self.processing.is_empty();
        let accept_enabled = self.accept_paused_until.is_none();
        tokio::select! {
            ready = self.reader.readable(), if read_enabled => Event::Readable(ready),
            wrote = self.writer.write(&self.unwritten), if write_enabled => Event::Wrote(wrote),
            verdict = wait_login(&mut self.login) => Event::LoginChecked(verdict),
            accepted = accept(self.listener.as_ref().filter(|_| accept_enabled)) => Event::Accepted(accepted),
            () = sleep_until(self.accept_paused_until) => {
                self.accept_paused_until = None;
                Event::AcceptResumed
            }
            (target, connected) = wait_connect(&mut self.connecting) => Event::Connected(target, connected),
            (upload, end, spool) = wait_receive(&mut self.receiving) => Event::Received(upload, end, spool),
            Some(done) = self.processing.join_next_with_id(), if processing => Event::Processed(done),
            () = sleep_until(self.deadline) => Event::Deadline,
            () = sleep_until(linger) => Event::CloseLingerExpired,
            _ = self.shutdown.wait_for(|stop| *stop), if shutdown_pending => Event::Shutdown,
        }
    }

    async fn handle(&mut self, event: Event<A::Processor>) {
        let input_now = now();
        match event {
            Event::Readable(Ok(())) => self.read_control(input_now),
            Event::Readable(Err(_)) => {
                self.reading = false;
                self.session.handle(input_now, Input::ControlClosed);
            }
            Event::Wrote(Ok(written)) if written > 0 => {
                self.unwritten.drain(..written);
            }
            Event::Wrote(_) => {
                // The client is gone: nothing more can be written to it.
                self.unwritten.clear();
                self.writer_shut = true;
                self.reading = false;
                self.session.handle(input_now, Input::ControlClosed);
            }
            Event::LoginChecked(verdict) => {
                self.login = None;
                let verdict = verdict.map(|processor| {
                    self.processor = Some(Arc::new(processor));
                });
                self.session.handle(input_now, Input::LoginChecked(verdict));
                if let Some(user) = self.session.user() {
                    let user = String::from_utf8_lossy(user);
                    tracing::Span::current().record("user", &*user);
                }
            }
            Event::Accepted(Ok((stream, peer))) => {
                self.just_connected = Some(stream);
                self.session
                    .handle(input_now, Input::Data(DataEvent::Connected { peer }));
                // The verdict (accept or refuse) is the next output.
            }
            Event::Accepted(Err(error)) => {
                // Out of file descriptors, say: the pending connection stays
                // in the backlog, so back off instead of spinning on it.
                tracing::warn!(%error, "accepting a data connection failed");
                self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
            }
            Event::Connected(target, Ok(stream)) => {
                self.connecting = None;
                self.just_connected = Some(stream);
                let event = DataEvent::Connected { peer: target };
                self.session.handle(input_now, Input::Data(event));
            }
            Event::Connected(_, Err(error)) => {
                self.connecting = None;
                tracing::debug!(%error, "active data connection failed");
                self.session
                    .handle(input_now, Input::Data(DataEvent::ConnectFailed));
            }
            Event::Received(upload, end, spool) => {
                self.receiving = None;
                if let Some(spool) = spool {
                    self.spooled.insert(upload, spool);
                }
                let event = DataEvent::TransferEnded { upload, end };
                self.session.handle(input_now, Input::Data(event));
            }
            Event::Processed(done) => self.processed(done),
            Event::Deadline => {
                self.deadline = None;
                self.session.handle(input_now, Input::Timeout);
            }
            Event::Shutdown => {
                self.shutdown_seen = true;
                self.session.handle(input_now, Input::Shutdown);
            }
            Event::AcceptResumed => {}
            Event::CloseLingerExpired => {
                // The client does not read its last replies: drop them.
                self.unwritten.clear();
                self.writer_shut = true;
            }
        }
    }

    /// Reads the control connection until it would block (or the session
    /// has enough queued). `try_read` rather than `AsyncRead`: tokio takes a
    /// short read as "drained", but the kernel also stops a read at the
    /// urgent mark of a Telnet Synch (sent before ABOR), with the rest
    /// already there and no new wake-up coming.
    fn read_control(&mut self, now: std::time::Instant) {
        while self.reading && self.session.wants_control_bytes() {
            match self.reader.try_read(&mut self.read_buffer) {
                Ok(0) => {
                    // The client may still read: what it sent gets answered.
                    self.reading = false;
                    self.session.handle(now, Input::ControlEof);
                }
                Ok(read) => {
                    let bytes = &self.read_buffer[..read];
                    self.session.handle(now, Input::ControlBytes(bytes));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.reading = false;
                    self.session.handle(now, Input::ControlClosed);
                }
            }
        }
    }

    fn processed(
        &mut self,
        done: Result<(tokio::task::Id, Result<(), ProcessError>), tokio::task::JoinError>,
    ) {
        let (id, result) = match done {
            Ok((id, result)) => (id, result),
            Err(error) if error.is_panic() => {
                tracing::error!("the processor panicked");
                (
                    error.id(),
                    Err(ProcessError::transient("the processor panicked")),
                )
            }
            // Cancelled by CancelProcessing: the session expects no answer.
            Err(error) => {
                if let Some(upload) = self.processing_uploads.remove(&error.id()) {
                    self.processing_handles.remove(&upload);
                }
                return;
            }
        };
        let Some(upload) = self.processing_uploads.remove(&id) else {
            return;
        };
        self.processing_handles.remove(&upload);
        self.session
            .handle(now(), Input::Processed { upload, result });
    }
}

async fn wait_login<P: Send + 'static>(
    login: &mut Option<JoinHandle<Result<P, LoginRejected>>>,
) -> Result<P, LoginRejected> {
    match login {
        // A panicking authenticator rejects the login.
        Some(handle) => handle.await.unwrap_or(Err(LoginRejected)),
        None => pending().await,
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => pending().await,
    }
}

async fn wait_connect(
    connecting: &mut Option<(SocketAddr, BoxFuture<io::Result<TcpStream>>)>,
) -> (SocketAddr, io::Result<TcpStream>) {
    match connecting {
        Some((target, future)) => (*target, future.await),
        None => pending().await,
    }
}

async fn wait_receive(
    receiving: &mut Option<Receiving>,
) -> (UploadId, TransferEnd, Option<SpoolFile>) {
    match receiving {
        Some((upload, future)) => {
            let (end, spool) = future.await;
            (*upload, end, spool)
        }
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
}
