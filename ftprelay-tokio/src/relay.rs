//! The relay: listeners, connection limits, sessions, graceful shutdown.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proto::{Authenticator, ConnectionCounter, RelayConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::connection;
use crate::spool::Spool;

/// What every session of a relay shares.
pub(crate) struct Shared<A: Authenticator> {
    pub(crate) authenticator: Arc<A>,
    pub(crate) config: RelayConfig,
    pub(crate) session_config: Arc<proto::Config>,
    pub(crate) spool: Spool,
    /// Moves the start of the passive port search from listener to listener.
    pub(crate) passive_turn: AtomicU64,
    connections: Mutex<ConnectionCounter>,
}

/// An FTP upload relay on tokio, bound and ready to serve.
///
/// ```no_run
/// # use ftprelay_tokio::{Relay, proto};
/// # async fn run(authenticator: impl proto::Authenticator) -> std::io::Result<()> {
/// let relay = Relay::bind(proto::RelayConfig::default(), authenticator).await?;
/// relay.serve(async { tokio::signal::ctrl_c().await.ok(); }).await
/// # }
/// ```
pub struct Relay<A: Authenticator> {
    shared: Arc<Shared<A>>,
    listeners: Vec<TcpListener>,
}

impl<A: Authenticator> Relay<A> {
    /// Binds every listener of `config`, then opens the spool: locks it
    /// (one relay per spool directory) and sweeps the relay's own leftovers
    /// from it. Fails with the address that could not be bound, or the spool
    /// directory that is locked by another relay.
    pub async fn bind(config: RelayConfig, authenticator: A) -> io::Result<Self> {
        // Listen first: a relay that cannot start must not touch the spool.
        let mut listeners = Vec::with_capacity(config.listen.len());
        for addr in &config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            listeners.push(listener);
        }
        let spool = Spool::open(config.spool_dir.as_deref())?;
        let shared = Shared {
            authenticator: Arc::new(authenticator),
            session_config: Arc::new(config.session.clone()),
            connections: Mutex::new(ConnectionCounter::new(
                config.max_connections,
                config.max_connections_per_ip,
            )),
            config,
            spool,
            passive_turn: AtomicU64::new(0),
        };
        Ok(Self {
            shared: Arc::new(shared),
            listeners,
        })
    }

    /// The addresses the relay listens on (with the ports the system chose
    /// for port 0).
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        self.shared.spool.dir()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets every
    /// upload in flight be received, processed and answered (for at most
    /// [`RelayConfig::shutdown_grace`]), closes idle sessions with `421`,
    /// and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Self { shared, listeners } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (accepted_tx, mut accepted_rx) = mpsc::channel(64);
        let mut acceptors = JoinSet::new();
        for listener in listeners {
            let local = listener.local_addr()?;
            tracing::info!(
                listen = %local,
                passive_ports = ?shared.config.passive_ports.map(|p| (p.first(), p.last())),
                spool = %shared.spool.dir().display(),
                "listening",
            );
            acceptors.spawn(accept_loop(listener, accepted_tx.clone()));
        }
        drop(accepted_tx);
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = accepted_rx.recv() => {
                    let Some((stream, local, peer)) = accepted else { break };
                    admit(&shared, &mut sessions, stream, local, peer, stop_rx.clone());
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        acceptors.shutdown().await;
        tracing::info!(
            sessions = sessions.len(),
            "shutting down: finishing uploads in flight"
        );
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(shared.config.shutdown_grace, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                sessions = sessions.len(),
                "shutdown grace period over: dropping the sessions left"
            );
            sessions.shutdown().await;
        }
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    accepted: mpsc::Sender<(TcpStream, SocketAddr, SocketAddr)>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let local = match stream.local_addr() {
                    Ok(local) => local,
                    Err(_) => continue,
                };
                if accepted.send((stream, local, peer)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Out of file descriptors, say: back off instead of spinning.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Starts a session for a new connection, or answers `421` when the limits
/// are reached.
fn admit<A: Authenticator>(
    shared: &Arc<Shared<A>>,
    sessions: &mut JoinSet<()>,
    mut stream: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let admitted = shared
        .connections
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .try_open(peer.ip());
    if let Err(refusal) = admitted {
        tracing::info!(%peer, ?refusal, "connection refused");
        sessions.spawn(async move {
            let bytes = refusal.reply().to_bytes();
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
        });
        return;
    }
    let guard = ConnectionGuard {
        shared: shared.clone(),
        ip: peer.ip(),
    };
    let span = tracing::info_span!("session", %peer, user = tracing::field::Empty);
    let shared = shared.clone();
    sessions.spawn(
        async move {
            let _guard = guard;
            tracing::debug!("connected");
            connection::serve(shared, stream, local, peer, stop).await;
            tracing::debug!("disconnected");
        }
        .instrument(span),
    );
}

/// Counts a connection for as long as it lives.
struct ConnectionGuard<A: Authenticator> {
    shared: Arc<Shared<A>>,
    ip: IpAddr,
}

impl<A: Authenticator> Drop for ConnectionGuard<A> {
    fn drop(&mut self) {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close(self.ip);
    }
}
