//! The relay: its listeners, its sessions as tasks of the runtime, and a
//! graceful shutdown. One source for every runtime; an adapter gives a
//! [`Runtime`] and wraps [`Relay`] in its own type.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proto::{Authenticator, RelayConfig};

use crate::driver;
use crate::listen;
use crate::proxy::{self, Endpoints};
use crate::runtime::{BoxFuture, Runtime};
use crate::spool::Spool;
use crate::state::Shared;
use crate::tls::Tls;
use crate::wait::{within, write_within};

/// How long to wait before accepting again on a listener whose accept
/// failed (out of file descriptors, say): the connection stays queued, so
/// trying again at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long cancelled sessions may take to be dropped by the runtime.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// How long a refused connection's `421` may take to be written.
const REFUSAL_WRITE: Duration = Duration::from_secs(5);

/// An FTP upload relay on runtime `R`, bound and ready to serve.
pub struct Relay<A: Authenticator, R: Runtime> {
    /// Shared by the sessions once it serves.
    shared: Shared<A, R>,
    listeners: Vec<Listening<R>>,
}

/// One control listener.
struct Listening<R: Runtime> {
    listener: R::Listener,
    addr: SocketAddr,
    /// Connections here are TLS from their first byte.
    implicit_tls: bool,
    /// Accepting failed: wait for this before trying again.
    paused: Option<R::Sleep>,
}

impl<A: Authenticator, R: Runtime> Relay<A, R> {
    /// Binds every listener of `config` (the plain ones, then the implicit
    /// TLS ones, which need `tls`), then opens the spool: locks it (one
    /// relay per spool directory) and sweeps the relay's own leftovers from
    /// it. Listening comes first, so a relay that cannot start leaves the
    /// spool alone. Fails with the address that could not be bound, or the
    /// spool directory that is locked by another relay.
    pub fn bind(
        config: RelayConfig,
        authenticator: A,
        runtime: R,
        tls: Option<Tls>,
    ) -> io::Result<Self> {
        Self::bind_inherited(config, Vec::new(), authenticator, runtime, tls)
    }

    /// [`Relay::bind`], serving on `inherited` listeners (already bound and
    /// listening, e.g. passed by systemd's socket activation) instead of
    /// those of [`RelayConfig::listen`] when there are any. The implicit
    /// TLS listeners are still bound from `config`.
    pub fn bind_inherited(
        config: RelayConfig,
        inherited: Vec<std::net::TcpListener>,
        authenticator: A,
        runtime: R,
        tls: Option<Tls>,
    ) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for (listener, implicit_tls) in listen::bind_all(&config, tls.is_some(), inherited)? {
            let addr = listener.local_addr()?;
            listeners.push(Listening {
                listener: runtime.listener(listener)?,
                addr,
                implicit_tls,
                paused: None,
            });
        }
        let spool = Spool::open(config.spool_dir.as_deref())?;
        let shared = Shared::new(config, authenticator, spool, runtime, tls);
        Ok(Self { shared, listeners })
    }

    /// Tells `observer` what happens in the relay from here on: connections
    /// admitted and refused, sessions closed, logins, uploads received and
    /// processed (see [`Observation`](crate::Observation)). Without one, a
    /// relay observes nothing.
    pub fn with_observer(mut self, observer: Arc<dyn crate::Observer>) -> Self {
        self.shared.observer = observer;
        self
    }

    /// The addresses the relay listens on (with the ports the system chose
    /// for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        self.shared.spool.dir()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets every
    /// upload in flight be received, processed and answered (for at most
    /// [`RelayConfig::shutdown_grace`]), closes idle sessions with `421`,
    /// cancels the sessions left after the grace period, and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Self {
            shared,
            mut listeners,
        } = self;
        let shared = Arc::new(shared);
        for listening in &listeners {
            let (listen, implicit_tls) = (listening.addr, listening.implicit_tls);
            tracing::debug!(%listen, implicit_tls, "listening");
        }
        let sessions = Sessions::default();
        let mut tasks: HashMap<u64, BoxFuture<Option<()>>> = HashMap::new();
        let mut shutdown = pin!(shutdown);
        loop {
            let next = std::future::poll_fn(|cx| {
                if shutdown.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                // Finished sessions' handles go: a relay that runs for months
                // must not keep one per session it ever served.
                for id in sessions.take_finished(cx) {
                    tasks.remove(&id);
                }
                poll_accept(&shared.runtime, &mut listeners, cx).map(Some)
            })
            .await;
            let Some(accepted) = next else { break };
            if let Some((id, task)) = admit(&shared, &sessions, accepted) {
                tasks.insert(id, task);
            }
        }
        drop(listeners);
        tracing::info!(
            sessions = sessions.running(),
            "shutting down: finishing uploads in flight"
        );
        sessions.stop();
        let (runtime, grace) = (&shared.runtime, shared.config.shutdown_grace);
        if !within(runtime, grace, sessions.all_finished()).await {
            tracing::warn!(
                sessions = sessions.running(),
                "shutdown grace period over: dropping the sessions left"
            );
        }
        // Dropping a handle cancels its task; the runtime drops the task's
        // future (its connection, threads and spool files) soon after, and
        // `serve` returns only once that happened.
        drop(tasks);
        if !within(runtime, CANCEL_WAIT, sessions.all_finished()).await {
            tracing::warn!(
                sessions = sessions.running(),
                "sessions still not dropped after their cancellation"
            );
        }
        shared.passive.close_all();
        Ok(())
    }
}

/// A connection accepted on a control listener.
struct Accepted<S> {
    stream: S,
    local: SocketAddr,
    peer: SocketAddr,
    implicit_tls: bool,
}

/// The next connection on any listener. A listener whose accept failed
/// pauses for [`ACCEPT_BACKOFF`]; a connection whose addresses cannot be
/// read is dropped.
fn poll_accept<R: Runtime>(
    runtime: &R,
    listeners: &mut [Listening<R>],
    cx: &mut Context<'_>,
) -> Poll<Accepted<R::Stream>> {
    for listening in listeners.iter_mut() {
        loop {
            if let Some(pause) = &mut listening.paused {
                if std::pin::Pin::new(pause).poll(cx).is_pending() {
                    break;
                }
                listening.paused = None;
            }
            match runtime.poll_accept(&listening.listener, cx) {
                Poll::Ready(Ok((stream, peer))) => {
                    let local = socket2::SockRef::from(&stream)
                        .local_addr()
                        .ok()
                        .and_then(|addr| addr.as_socket());
                    let Some(local) = local else { continue };
                    return Poll::Ready(Accepted {
                        stream,
                        local,
                        peer,
                        implicit_tls: listening.implicit_tls,
                    });
                }
                Poll::Ready(Err(error)) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    listening.paused = Some(runtime.sleep_until(runtime.now() + ACCEPT_BACKOFF));
                }
                Poll::Pending => break,
            }
        }
    }
    Poll::Pending
}

/// Starts a session for a new connection, or answers `421` when the limits
/// are reached. Returns the session's id and task. A connection from a
/// trusted proxy is counted once its header named the client.
fn admit<A: Authenticator, R: Runtime>(
    shared: &Arc<Shared<A, R>>,
    sessions: &Sessions,
    accepted: Accepted<R::Stream>,
) -> Option<(u64, BoxFuture<Option<()>>)> {
    let Accepted {
        stream,
        local,
        peer,
        implicit_tls,
    } = accepted;
    let (id, token) = sessions.start();
    if proxy::is_trusted(&shared.config, peer.ip()) {
        let session = proxied(
            shared.clone(),
            stream,
            (local, peer),
            implicit_tls,
            sessions.stopped(id),
        );
        let task = shared
            .runtime
            .spawn(crate::panics::Caught::new(session, peer, token));
        return Some((id, task));
    }
    let guard = match shared.admit(peer.ip()) {
        Ok(guard) => guard,
        Err(refusal) => {
            tracing::info!(%peer, ?refusal, "connection refused");
            let write = write_refusal(shared.clone(), stream, refusal.reply().to_bytes());
            // It ends by itself, within REFUSAL_WRITE.
            let task = shared.runtime.spawn(async move {
                write.await;
                drop(token);
            });
            return Some((id, task));
        }
    };
    let session = driver::session(
        shared.clone(),
        guard,
        stream,
        Endpoints::direct(local, peer),
        implicit_tls,
        sessions.stopped(id),
    );
    // A panic ends this session only, and is logged, on every runtime.
    let task = shared
        .runtime
        .spawn(crate::panics::Caught::new(session, peer, token));
    Some((id, task))
}

/// A connection from a trusted proxy: its header (bounded in size and
/// time; a bad one closes the connection, with a log line), then the
/// client it names is counted against the limits (refused with `421`,
/// which the proxy passes on) and served.
async fn proxied<A: Authenticator, R: Runtime>(
    shared: Arc<Shared<A, R>>,
    stream: R::Stream,
    (local, proxy): (SocketAddr, SocketAddr),
    implicit_tls: bool,
    shutdown: BoxFuture<()>,
) {
    let header = match proxy::read_header(&shared.runtime, &stream).await {
        Ok(header) => header,
        Err(failure) => {
            tracing::warn!(%proxy, %failure, "connection from a proxy closed");
            return;
        }
    };
    let endpoints = Endpoints::proxied(local, proxy, &header);
    let peer = endpoints.peer;
    let guard = match shared.admit(peer.ip()) {
        Ok(guard) => guard,
        Err(refusal) => {
            tracing::info!(%peer, %proxy, ?refusal, "connection refused");
            let bytes = refusal.reply().to_bytes();
            write_within(&shared.runtime, &stream, &bytes, REFUSAL_WRITE).await;
            return;
        }
    };
    // Boxed: this future then holds a pointer, not a second copy of the
    // session's (see `panics::Caught`).
    let session = driver::session(shared, guard, stream, endpoints, implicit_tls, shutdown);
    Box::pin(session).await;
}

/// Writes a refused connection's `421`, for at most [`REFUSAL_WRITE`].
async fn write_refusal<A: Authenticator, R: Runtime>(
    shared: Arc<Shared<A, R>>,
    stream: R::Stream,
    bytes: Vec<u8>,
) {
    write_within(&shared.runtime, &stream, &bytes, REFUSAL_WRITE).await;
}

/// The relay's sessions: how many run, which finished, and the stop signal
/// they wait for.
#[derive(Default, Clone)]
struct Sessions {
    inner: Arc<Mutex<SessionsState>>,
}

#[derive(Default)]
struct SessionsState {
    next_id: u64,
    running: usize,
    finished: Vec<u64>,
    stopping: bool,
    /// Woken when a session finishes (the serve loop).
    on_finish: Option<Waker>,
    /// Woken when the relay stops: each waiting session's waker, by id.
    on_stop: HashMap<u64, Waker>,
}

/// Held by a session's task: dropped when the task ends, however it ends.
struct SessionToken {
    sessions: Sessions,
    id: u64,
}

impl Drop for SessionToken {
    fn drop(&mut self) {
        let mut state = self.sessions.lock();
        state.running -= 1;
        state.finished.push(self.id);
        state.on_stop.remove(&self.id);
        if let Some(waker) = state.on_finish.take() {
            waker.wake();
        }
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionsState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start(&self) -> (u64, SessionToken) {
        let mut state = self.lock();
        state.next_id += 1;
        state.running += 1;
        let id = state.next_id;
        let token = SessionToken {
            sessions: self.clone(),
            id,
        };
        (id, token)
    }

    fn running(&self) -> usize {
        self.lock().running
    }

    /// The sessions that finished since the last call; wakes `cx` at the
    /// next.
    fn take_finished(&self, cx: &Context<'_>) -> Vec<u64> {
        let mut state = self.lock();
        state.on_finish = Some(cx.waker().clone());
        std::mem::take(&mut state.finished)
    }

    /// Resolves once every session has finished.
    fn all_finished(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            let mut state = self.lock();
            if state.running == 0 {
                Poll::Ready(())
            } else {
                state.on_finish = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// Tells every session that the relay stops.
    fn stop(&self) {
        let mut state = self.lock();
        state.stopping = true;
        for (_, waker) in state.on_stop.drain() {
            waker.wake();
        }
    }

    /// A future that resolves once the relay stops, for session `id`.
    fn stopped(&self, id: u64) -> BoxFuture<()> {
        let sessions = self.clone();
        Box::pin(std::future::poll_fn(move |cx| {
            let mut state = sessions.lock();
            if state.stopping {
                Poll::Ready(())
            } else {
                state.on_stop.insert(id, cx.waker().clone());
                Poll::Pending
            }
        }))
    }
}
