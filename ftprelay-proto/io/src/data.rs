//! The data channel of one session: the passive listener, the data
//! connection (accepted, connected or handshaking), and the transfer that
//! runs on it.

use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proto::{DataEvent, PassivePorts, TransferEnd, TransferId};

use crate::proxy::HeaderRead;
use crate::receive::{self, DataConnection};
use crate::runtime::{BoxFuture, Runtime};
use crate::spool::SpoolFile;

/// How long to wait before accepting again after accepting failed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A transfer running on the data connection: how it ended, and the spool
/// file of a complete upload.
type Running = (TransferId, BoxFuture<(TransferEnd, Option<SpoolFile>)>);

/// What happened on the data channel.
pub(crate) enum DataNews<S> {
    /// A connection came on the passive listener (or accepting failed);
    /// through a trusted proxy, with the client its header named.
    Accepted(io::Result<(S, SocketAddr)>),
    /// Accepting may be tried again after a failure.
    AcceptResumed,
    /// The active-mode connect to this address ended.
    Connected(SocketAddr, io::Result<S>),
    /// A transfer ended; a complete upload's spool file comes with it.
    TransferEnded(TransferId, TransferEnd, Option<SpoolFile>),
}

/// One session's data channel.
pub(crate) struct DataChannel<R: Runtime> {
    listener: Option<R::Listener>,
    /// Accepting failed: wait for this before trying again.
    accept_paused: Option<R::Sleep>,
    /// A connection from a trusted proxy whose header is being read, and
    /// the proxy's address. Nothing more is accepted meanwhile: a proxy
    /// sends its header at once, and this bounds what one listener holds.
    proxied: Option<(R::Stream, SocketAddr, HeaderRead<R>)>,
    /// A connection reported to the session and awaiting its verdict.
    just_connected: Option<R::Stream>,
    /// The accepted (or connected) connection, until a transfer takes it;
    /// a protected one is handshaking already.
    connection: Option<DataConnection<R::Stream>>,
    connecting: Option<(SocketAddr, BoxFuture<io::Result<R::Stream>>)>,
    running: Option<Running>,
}

impl<R: Runtime> DataChannel<R> {
    pub(crate) fn new() -> Self {
        Self {
            listener: None,
            accept_paused: None,
            proxied: None,
            just_connected: None,
            connection: None,
            connecting: None,
            running: None,
        }
    }

    /// Listens on `ip`, in the passive port range; the news for the session.
    pub(crate) fn listen(
        &mut self,
        runtime: &R,
        ip: IpAddr,
        ports: Option<PassivePorts>,
        turn: u64,
    ) -> DataEvent {
        let bound = receive::bind_passive(ip, ports, turn).and_then(|listener| match listener {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                let addr = listener.local_addr()?;
                Ok(Some((runtime.listener(listener)?, addr)))
            }
            None => Ok(None),
        });
        match bound {
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
        }
    }

    /// Connects to a client's active-mode address.
    pub(crate) fn connect(&mut self, runtime: &R, target: SocketAddr) {
        self.connecting = Some((target, runtime.connect(target)));
    }

    /// A connection came (accepted or connected): it waits for the
    /// session's verdict.
    pub(crate) fn arrived(&mut self, stream: R::Stream) {
        self.just_connected = Some(stream);
    }

    /// Accepting failed (out of file descriptors, say): the pending
    /// connection stays in the backlog, so back off instead of spinning.
    pub(crate) fn pause_accepting(&mut self, runtime: &R) {
        self.accept_paused = Some(runtime.sleep_until(runtime.now() + ACCEPT_BACKOFF));
    }

    /// The session keeps the connection that came, prepared by `prepare`
    /// (a protected one starts its handshake). One connection per
    /// listener: the port is free again.
    pub(crate) fn accept(
        &mut self,
        prepare: impl FnOnce(DataConnection<R::Stream>) -> DataConnection<R::Stream>,
    ) {
        self.connection = self
            .just_connected
            .take()
            .map(|connection| prepare(DataConnection::Clear(connection)));
        self.listener = None;
    }

    /// The session refuses the connection that came.
    pub(crate) fn refuse(&mut self) {
        self.just_connected = None;
    }

    /// The connection, for a transfer to take.
    pub(crate) fn take_connection(&mut self) -> Option<DataConnection<R::Stream>> {
        self.connection.take()
    }

    /// `transfer` runs now.
    pub(crate) fn run(&mut self, transfer: Running) {
        self.running = Some(transfer);
    }

    /// The transfer is aborted: dropping it stops it (and deletes a
    /// partial spool file).
    pub(crate) fn abort(&mut self) {
        self.running = None;
    }

    /// The listener and any connection not being received go.
    pub(crate) fn close(&mut self) {
        self.listener = None;
        self.proxied = None;
        self.connection = None;
        self.connecting = None;
    }

    /// What happened, if anything. A connection from a peer for which
    /// `trusted` holds (a proxy) is reported once its header is read, with
    /// the client the header names; one whose header is bad (or missing)
    /// is closed, with a log line, and the listener goes on waiting.
    pub(crate) fn poll(
        &mut self,
        runtime: &R,
        cx: &mut Context<'_>,
        trusted: impl Fn(IpAddr) -> bool,
    ) -> Poll<DataNews<R::Stream>> {
        loop {
            if let Some((stream, proxy, read)) = &mut self.proxied {
                let Poll::Ready(header) = read.poll(runtime, stream, cx) else {
                    break;
                };
                let proxy = *proxy;
                let Some((stream, _, _)) = self.proxied.take() else {
                    break;
                };
                match header {
                    // A header that names no client leaves the proxy's
                    // address, which the session's data-peer check refuses
                    // unless the proxy is the client.
                    Ok(header) => {
                        let peer = header.source().unwrap_or(proxy);
                        return Poll::Ready(DataNews::Accepted(Ok((stream, peer))));
                    }
                    Err(failure) => {
                        tracing::warn!(%proxy, %failure, "data connection from a proxy closed");
                        continue;
                    }
                }
            }
            match (&mut self.accept_paused, &self.listener) {
                (Some(pause), _) => {
                    if Pin::new(pause).poll(cx).is_ready() {
                        self.accept_paused = None;
                        return Poll::Ready(DataNews::AcceptResumed);
                    }
                }
                (None, Some(listener)) => match runtime.poll_accept(listener, cx) {
                    Poll::Ready(Ok((stream, peer))) if trusted(peer.ip()) => {
                        self.proxied = Some((stream, peer, HeaderRead::new(runtime)));
                        continue;
                    }
                    Poll::Ready(accepted) => return Poll::Ready(DataNews::Accepted(accepted)),
                    Poll::Pending => {}
                },
                (None, None) => {}
            }
            break;
        }
        if let Some((target, connecting)) = &mut self.connecting
            && let Poll::Ready(connected) = connecting.as_mut().poll(cx)
        {
            let target = *target;
            self.connecting = None;
            return Poll::Ready(DataNews::Connected(target, connected));
        }
        if let Some((transfer, running)) = &mut self.running
            && let Poll::Ready((end, spool)) = running.as_mut().poll(cx)
        {
            let transfer = *transfer;
            self.running = None;
            return Poll::Ready(DataNews::TransferEnded(transfer, end, spool));
        }
        Poll::Pending
    }
}
