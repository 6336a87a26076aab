//! The data channel of one session: the passive listener (its own, or a
//! wait on a shared port of the range), the data connection (accepted,
//! connected or handshaking), and the transfer that runs on it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use proto::{Authenticator, DataEvent, TransferEnd, TransferId};

use crate::passive::Acceptor;
use crate::receive::DataConnection;
use crate::runtime::{BoxFuture, Runtime};
use crate::shared_ports::{self, Waiting};
use crate::spool::SpoolFile;
use crate::state::Shared;

/// A transfer running on the data connection: how it ended, and the spool
/// file of a complete upload.
type Running = (TransferId, BoxFuture<(TransferEnd, Option<SpoolFile>)>);

/// What happened on the data channel.
pub(crate) enum DataNews<S> {
    /// A connection came on the passive listener; through a trusted proxy,
    /// with the client its header named.
    Accepted(S, SocketAddr),
    /// The active-mode connect to this address ended.
    Connected(SocketAddr, io::Result<S>),
    /// A transfer ended; a complete upload's spool file comes with it.
    TransferEnded(TransferId, TransferEnd, Option<SpoolFile>),
}

/// Where a passive data connection is to come from.
enum Passive<R: Runtime> {
    /// A listener of the session's own, on a port the system chose (no
    /// port range).
    Own(Acceptor<R>),
    /// A port of the range, shared with sessions from other addresses.
    Shared(Waiting<R::Stream>),
}

/// One session's data channel.
pub(crate) struct DataChannel<R: Runtime> {
    passive: Option<Passive<R>>,
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
            passive: None,
            just_connected: None,
            connection: None,
            connecting: None,
            running: None,
        }
    }

    /// Listens on `ip` for a connection from `client`: with a passive port
    /// range, on a port of it shared with other sessions (from other
    /// addresses); without one, on a port of its own. The news for the
    /// session.
    pub(crate) fn listen<A: Authenticator>(
        &mut self,
        shared: &Arc<Shared<A, R>>,
        ip: IpAddr,
        client: IpAddr,
        turn: u64,
    ) -> DataEvent {
        self.passive = None;
        let passive = match shared.config.passive_ports {
            Some(range) => shared_ports::wait(shared, ip, client, range, turn)
                .map(|waiting| waiting.map(Passive::Shared)),
            None => own_listener(&shared.runtime, ip).map(|acceptor| Some(Passive::Own(acceptor))),
        };
        match passive {
            Ok(Some(passive)) => {
                let addr = match &passive {
                    Passive::Own(acceptor) => acceptor.local(),
                    Passive::Shared(waiting) => waiting.port(),
                };
                self.passive = Some(passive);
                DataEvent::Listening(addr)
            }
            Ok(None) => {
                tracing::warn!("every passive port is taken for this client");
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
        self.passive = None;
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
        self.passive = None;
        self.connection = None;
        self.connecting = None;
    }

    /// What happened, if anything. A connection from a peer for which
    /// `trusted` holds (a proxy) is reported once its header is read, with
    /// the client the header names (see [`Acceptor::poll_next`]).
    pub(crate) fn poll(
        &mut self,
        runtime: &R,
        cx: &mut Context<'_>,
        trusted: impl Fn(IpAddr) -> bool,
    ) -> Poll<DataNews<R::Stream>> {
        let accepted = match &mut self.passive {
            Some(Passive::Own(acceptor)) => acceptor.poll_next(runtime, cx, trusted),
            Some(Passive::Shared(waiting)) => waiting.poll(cx),
            None => Poll::Pending,
        };
        if let Poll::Ready((stream, peer)) = accepted {
            return Poll::Ready(DataNews::Accepted(stream, peer));
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

/// A listener on `ip`, on a port the system chooses.
fn own_listener<R: Runtime>(runtime: &R, ip: IpAddr) -> io::Result<Acceptor<R>> {
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    Ok(Acceptor::new(runtime.listener(listener)?, local))
}
