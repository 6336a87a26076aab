//! Accepting on one passive listener: the connections that come, each
//! with the client it is from (a trusted proxy's header read first), and a
//! pause after a failed accept instead of a spin. A session's own listener
//! and a shared port's (see `shared_ports`) both accept through this.

use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::proxy::HeaderRead;
use crate::runtime::Runtime;

/// How long to wait before accepting again after accepting failed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections from trusted proxies whose headers are being read at once,
/// at most, which bounds what one listener holds. A proxy sends its header
/// the moment it connects; past this, the connection waiting longest for
/// its header is closed. Accepting goes on: on a shared port, a stop would
/// keep every other client's connection waiting for silent ones.
const MAX_HEADERS_READ: usize = 16;

/// One passive listener and what its accepting is in the middle of.
pub(crate) struct Acceptor<R: Runtime> {
    listener: R::Listener,
    /// The relay's end: the address the listener is bound to.
    local: SocketAddr,
    /// Accepting failed (out of file descriptors, say): the pending
    /// connection stays in the backlog, so wait for this before trying
    /// again.
    paused: Option<R::Sleep>,
    /// Connections from trusted proxies whose headers are being read, and
    /// each proxy's address.
    proxied: Vec<(R::Stream, SocketAddr, HeaderRead<R>)>,
}

impl<R: Runtime> Acceptor<R> {
    /// Accepts on `listener`, bound to `local`.
    pub(crate) fn new(listener: R::Listener, local: SocketAddr) -> Self {
        Self {
            listener,
            local,
            paused: None,
            proxied: Vec::new(),
        }
    }

    /// The address the listener is bound to.
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// The next connection and the client it is from. A connection from a
    /// peer for which `trusted` holds (a proxy) comes once its header is
    /// read, with the client the header names; one whose header is bad (or
    /// missing) is closed, with a log line. A failed accept is logged and
    /// paused after.
    pub(crate) fn poll_next(
        &mut self,
        runtime: &R,
        cx: &mut Context<'_>,
        trusted: impl Fn(IpAddr) -> bool,
    ) -> Poll<(R::Stream, SocketAddr)> {
        loop {
            if let Some(ready) = self.poll_headers(runtime, cx) {
                return Poll::Ready(ready);
            }
            if let Some(pause) = &mut self.paused {
                if Pin::new(pause).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.paused = None;
            }
            match runtime.poll_accept(&self.listener, cx) {
                Poll::Ready(Ok((stream, peer))) if trusted(peer.ip()) => {
                    if self.proxied.len() >= MAX_HEADERS_READ {
                        // Oldest first: `poll_headers` keeps the order.
                        let (_, proxy, _) = self.proxied.remove(0);
                        tracing::warn!(%proxy, "data connection from a proxy closed: too many proxy headers awaited at once");
                    }
                    // Polled at the top of the loop, which registers it.
                    let read = HeaderRead::new(runtime);
                    self.proxied.push((stream, peer, read));
                }
                Poll::Ready(Ok(accepted)) => return Poll::Ready(accepted),
                Poll::Ready(Err(error)) => {
                    tracing::warn!(%error, port = self.local.port(), "accepting a data connection failed");
                    self.paused = Some(runtime.sleep_until(runtime.now() + ACCEPT_BACKOFF));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// A proxied connection whose header is read: it names the client. A
    /// header that names none leaves the proxy's address, which the
    /// session's data-peer check refuses unless the proxy is the client.
    fn poll_headers(
        &mut self,
        runtime: &R,
        cx: &mut Context<'_>,
    ) -> Option<(R::Stream, SocketAddr)> {
        let mut index = 0;
        while index < self.proxied.len() {
            let (stream, _, read) = &mut self.proxied[index];
            let Poll::Ready(header) = read.poll(runtime, stream, cx) else {
                index += 1;
                continue;
            };
            // `remove`, not `swap_remove`: the oldest stays first.
            let (stream, proxy, _) = self.proxied.remove(index);
            match header {
                Ok(header) => return Some((stream, header.source().unwrap_or(proxy))),
                Err(failure) => {
                    tracing::warn!(%proxy, %failure, "data connection from a proxy closed");
                }
            }
        }
        None
    }
}
