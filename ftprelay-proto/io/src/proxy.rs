//! The PROXY protocol on the relay's connections: which peers are trusted
//! proxies, and reading a header from one, bounded in size (the core's
//! [`proto::proxy::ProxyHeaderReader`]) and in time. The reads never take a
//! byte past the header: what follows is the FTP session's, or the
//! upload's on a data connection.

use std::fmt;
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proto::RelayConfig;
use proto::proxy::{MAX_HEADER_LENGTH, ProxyError, ProxyHeader, ProxyHeaderReader, ProxyStep};

use crate::runtime::Runtime;

/// How long a trusted proxy may take to send its header. A proxy sends it
/// the moment it connects; a connection from a proxy address that stays
/// silent this long is not one to wait for.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `ip` is a proxy trusted to send a header (in
/// [`RelayConfig::proxy_from`]); never when the PROXY protocol is off.
pub(crate) fn is_trusted(config: &RelayConfig, ip: IpAddr) -> bool {
    config.proxy_from.iter().any(|block| block.contains(ip))
}

/// Why no header was read: the connection is closed, with a log line.
#[derive(Debug)]
pub(crate) enum HeaderFailure {
    /// The bytes are not a valid header.
    Invalid(ProxyError),
    /// Nothing complete within [`HEADER_TIMEOUT`].
    TimedOut,
    /// The proxy closed the connection first.
    Closed,
    /// Reading failed.
    Failed(io::Error),
}

impl fmt::Display for HeaderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(error) => error.fmt(f),
            Self::TimedOut => write!(f, "no PROXY header within {HEADER_TIMEOUT:?}"),
            Self::Closed => f.write_str("closed before its PROXY header ended"),
            Self::Failed(error) => write!(f, "reading the PROXY header failed: {error}"),
        }
    }
}

/// The header of one connection being read.
pub(crate) struct HeaderRead<R: Runtime> {
    reader: ProxyHeaderReader,
    timeout: R::Sleep,
}

impl<R: Runtime> HeaderRead<R> {
    /// Starts reading now: the header must be complete within
    /// [`HEADER_TIMEOUT`].
    pub(crate) fn new(runtime: &R) -> Self {
        Self {
            reader: ProxyHeaderReader::new(),
            timeout: runtime.sleep_until(runtime.now() + HEADER_TIMEOUT),
        }
    }

    /// Reads from `stream` what the header still needs, no more.
    pub(crate) fn poll(
        &mut self,
        runtime: &R,
        stream: &R::Stream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ProxyHeader, HeaderFailure>> {
        let mut buf = [0; MAX_HEADER_LENGTH];
        loop {
            let wanted = self.reader.wanted().min(buf.len());
            match runtime.poll_read(stream, cx, &mut buf[..wanted]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(HeaderFailure::Closed)),
                Poll::Ready(Ok(read)) => match self.reader.push(&buf[..read]) {
                    Ok(ProxyStep::NeedMore) => {}
                    Ok(ProxyStep::Done { header, .. }) => return Poll::Ready(Ok(header)),
                    Err(error) => return Poll::Ready(Err(HeaderFailure::Invalid(error))),
                },
                Poll::Ready(Err(error)) => return Poll::Ready(Err(HeaderFailure::Failed(error))),
                Poll::Pending => break,
            }
        }
        match Pin::new(&mut self.timeout).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(HeaderFailure::TimedOut)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Reads the header at the start of `stream` (see [`HeaderRead`]).
pub(crate) async fn read_header<R: Runtime>(
    runtime: &R,
    stream: &R::Stream,
) -> Result<ProxyHeader, HeaderFailure> {
    let mut read = HeaderRead::new(runtime);
    std::future::poll_fn(|cx| read.poll(runtime, stream, cx)).await
}

/// The addresses of a control connection, as the session and the driver
/// use them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoints {
    /// The relay's end of the socket: passive listeners bind on its address.
    pub(crate) local: SocketAddr,
    /// The address the client connected to, for the session's PASV answer:
    /// `local`, or the proxy's address that a header named.
    pub(crate) client_local: SocketAddr,
    /// The client: the socket's peer, or the client a header named. Logs,
    /// limits, the login throttle and the PORT and data-peer checks use it.
    pub(crate) peer: SocketAddr,
    /// The trusted proxy the connection came through.
    pub(crate) proxy: Option<SocketAddr>,
}

impl Endpoints {
    /// A connection served as it is.
    pub(crate) fn direct(local: SocketAddr, peer: SocketAddr) -> Self {
        Self {
            local,
            client_local: local,
            peer,
            proxy: None,
        }
    }

    /// A connection from the trusted `proxy`, whose header said `header`:
    /// a header that names no client (a health check) leaves the socket's
    /// addresses.
    pub(crate) fn proxied(local: SocketAddr, proxy: SocketAddr, header: &ProxyHeader) -> Self {
        Self {
            local,
            client_local: header.destination().unwrap_or(local),
            peer: header.source().unwrap_or(proxy),
            proxy: Some(proxy),
        }
    }
}
