//! The relay on tokio: the shared relay of `ftprelay-io`, on tokio's
//! sockets, timers and tasks.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use proto::{Authenticator, RelayConfig};

use crate::Tls;
use crate::runtime::Tokio;

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
    inner: ftprelay_io::Relay<A, Tokio>,
}

impl<A: Authenticator> Relay<A> {
    /// Binds every listener of `config`, then opens the spool: locks it
    /// (one relay per spool directory) and sweeps the relay's own leftovers
    /// from it. Fails with the address that could not be bound, or the spool
    /// directory that is locked by another relay. Call it inside a tokio
    /// runtime.
    pub async fn bind(config: RelayConfig, authenticator: A) -> io::Result<Self> {
        let inner = ftprelay_io::Relay::bind(config, authenticator, Tokio, None)?;
        Ok(Self { inner })
    }

    /// [`Relay::bind`] with FTPS: `AUTH TLS` on every listener, and the
    /// implicit-TLS listeners of [`RelayConfig::implicit_tls_listen`].
    pub async fn bind_with_tls(
        config: RelayConfig,
        authenticator: A,
        tls: Tls,
    ) -> io::Result<Self> {
        let inner = ftprelay_io::Relay::bind(config, authenticator, Tokio, Some(tls))?;
        Ok(Self { inner })
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
        let inner =
            ftprelay_io::Relay::bind_inherited(config, inherited, authenticator, Tokio, tls)?;
        Ok(Self { inner })
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
        self.inner.serve(shutdown).await
    }
}
