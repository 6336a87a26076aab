//! The relay on tokio: listeners, sessions as tasks, graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto::{Authenticator, RelayConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::runtime::Tokio;
use crate::shared::driver;
use crate::shared::listen;
use crate::shared::spool::Spool;
use crate::shared::state::Shared;
use crate::shared::tls::Tls;

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
    shared: Arc<Shared<A, Tokio>>,
    /// Each listener, and whether it is for implicit TLS.
    listeners: Vec<(TcpListener, bool)>,
}

impl<A: Authenticator> Relay<A> {
    /// Binds every listener of `config`, then opens the spool: locks it
    /// (one relay per spool directory) and sweeps the relay's own leftovers
    /// from it. Fails with the address that could not be bound, or the spool
    /// directory that is locked by another relay.
    pub async fn bind(config: RelayConfig, authenticator: A) -> io::Result<Self> {
        Self::bind_inner(config, authenticator, None).await
    }

    /// [`Relay::bind`] with FTPS: `AUTH TLS` on every listener, and the
    /// implicit-TLS listeners of [`RelayConfig::implicit_tls_listen`].
    pub async fn bind_with_tls(
        config: RelayConfig,
        authenticator: A,
        tls: Tls,
    ) -> io::Result<Self> {
        Self::bind_inner(config, authenticator, Some(tls)).await
    }

    async fn bind_inner(
        config: RelayConfig,
        authenticator: A,
        tls: Option<Tls>,
    ) -> io::Result<Self> {
        // Listen first: a relay that cannot start must not touch the spool.
        let listeners = listen::bind_all(&config, tls.is_some())?
            .into_iter()
            .map(|(listener, implicit)| Ok((TcpListener::from_std(listener)?, implicit)))
            .collect::<io::Result<Vec<_>>>()?;
        let spool = Spool::open(config.spool_dir.as_deref())?;
        let shared = Shared::new(config, authenticator, spool, Tokio, tls);
        Ok(Self {
            shared: Arc::new(shared),
            listeners,
        })
    }

    /// The addresses the relay listens on (with the ports the system chose
    /// for port 0).
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(|(l, _)| l.local_addr()).collect()
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
        for (listener, implicit) in listeners {
            let local = listener.local_addr()?;
            tracing::debug!(listen = %local, implicit_tls = implicit, "listening");
            acceptors.spawn(accept_loop(listener, implicit, accepted_tx.clone()));
        }
        drop(accepted_tx);
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = accepted_rx.recv() => {
                    let Some((stream, local, peer, implicit)) = accepted else { break };
                    admit(&shared, &mut sessions, stream, (local, peer), implicit, stop_rx.clone());
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

/// A connection, its local and peer addresses, and whether it is implicit TLS.
type Accepted = (TcpStream, SocketAddr, SocketAddr, bool);

async fn accept_loop(listener: TcpListener, implicit: bool, accepted: mpsc::Sender<Accepted>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(local) = stream.local_addr() else {
                    continue;
                };
                if accepted
                    .send((stream, local, peer, implicit))
                    .await
                    .is_err()
                {
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
    shared: &Arc<Shared<A, Tokio>>,
    sessions: &mut JoinSet<()>,
    mut stream: TcpStream,
    (local, peer): (SocketAddr, SocketAddr),
    implicit: bool,
    mut stop: watch::Receiver<bool>,
) {
    let guard = match shared.admit(peer.ip()) {
        Ok(guard) => guard,
        Err(refusal) => {
            tracing::info!(%peer, ?refusal, "connection refused");
            sessions.spawn(async move {
                let bytes = refusal.reply().to_bytes();
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
            });
            return;
        }
    };
    let stopped = Box::pin(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    });
    let addrs = (local, peer);
    sessions.spawn(driver::session(
        shared.clone(),
        guard,
        stream,
        addrs,
        implicit,
        stopped,
    ));
}
