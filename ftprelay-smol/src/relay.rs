//! The relay on smol: the shared relay of `ftprelay-io`, on async-io's
//! sockets and timers, with its tasks on an executor of its own.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use proto::{Authenticator, RelayConfig};
use smol::Executor;

use crate::Tls;
use crate::runtime::Smol;

/// An FTP upload relay on smol (async-io), bound and ready to serve. It
/// runs under any executor: smol's, async-std's, or a plain `block_on`.
///
/// ```no_run
/// # use ftprelay_smol::{Relay, proto};
/// # fn run(authenticator: impl proto::Authenticator) -> std::io::Result<()> {
/// smol::block_on(async {
///     let relay = Relay::bind(proto::RelayConfig::default(), authenticator).await?;
///     relay.serve(std::future::pending()).await
/// })
/// # }
/// ```
pub struct Relay<A: Authenticator> {
    inner: ftprelay_io::Relay<A, Smol>,
    /// The only strong handle of the relay's executor.
    executor: Arc<Executor<'static>>,
}

impl<A: Authenticator> Relay<A> {
    /// Binds every listener of `config`, then opens the spool: locks it
    /// (one relay per spool directory) and sweeps the relay's own leftovers
    /// from it. Fails with the address that could not be bound, or the spool
    /// directory that is locked by another relay.
    pub async fn bind(config: RelayConfig, authenticator: A) -> io::Result<Self> {
        Self::bind_inner(config, Vec::new(), authenticator, None)
    }

    /// [`Relay::bind`] with FTPS: `AUTH TLS` on every listener, and the
    /// implicit-TLS listeners of [`RelayConfig::implicit_tls_listen`].
    pub async fn bind_with_tls(
        config: RelayConfig,
        authenticator: A,
        tls: Tls,
    ) -> io::Result<Self> {
        Self::bind_inner(config, Vec::new(), authenticator, Some(tls))
    }

    fn bind_inner(
        config: RelayConfig,
        inherited: Vec<std::net::TcpListener>,
        authenticator: A,
        tls: Option<Tls>,
    ) -> io::Result<Self> {
        let executor = Arc::new(Executor::new());
        let runtime = Smol {
            executor: Arc::downgrade(&executor),
        };
        let inner =
            ftprelay_io::Relay::bind_inherited(config, inherited, authenticator, runtime, tls)?;
        Ok(Self { inner, executor })
    }

    /// [`Relay::bind`] (with FTPS if `tls` is given) on `inherited`
    /// listeners, already bound and listening (systemd's socket
    /// activation), instead of those of [`RelayConfig::listen`] when there
    /// are any.
    pub async fn bind_inherited(
        config: RelayConfig,
        inherited: Vec<std::net::TcpListener>,
        authenticator: A,
        tls: Option<Tls>,
    ) -> io::Result<Self> {
        Self::bind_inner(config, inherited, authenticator, tls)
    }

    /// Tells `observer` what happens in the relay from here on:
    /// connections admitted and refused, sessions closed, logins, uploads
    /// received and processed (see [`crate::Observation`]). Without one, a
    /// relay observes nothing.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn crate::Observer>) -> Self {
        self.inner = self.inner.with_observer(observer);
        self
    }

    /// The addresses the relay listens on (with the ports the system chose
    /// for port 0).
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.inner.local_addrs())
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        self.inner.spool_dir()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets every
    /// upload in flight be received, processed and answered (for at most
    /// [`RelayConfig::shutdown_grace`]), closes idle sessions with `421`,
    /// and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Self { inner, executor } = self;
        let served = executor.run(inner.serve(shutdown)).await;
        // Dropping the executor drops the tasks left: their connections,
        // threads and spool files go with them.
        drop(executor);
        served
    }
}
