//! smol's primitives for the relay of `ftprelay-io`: async-io sockets and timers,
//! and the relay's own executor.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::Weak;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use smol::future::FutureExt as _;
use smol::{Async, Executor, Timer};

use ftprelay_io::{BoxFuture, Runtime};

/// The executor the relay's tasks run on. It runs inside
/// [`crate::Relay::serve`], so whichever executor polls that future (smol,
/// async-std, a `block_on`) runs the relay.
///
/// Weak: the relay's tasks hold this runtime, and the executor holds the
/// tasks. The strong handle is the [`crate::Relay`]'s; when `serve` ends (or
/// is dropped) the executor goes, and with it every task left: their
/// sockets, threads and spool files are released.
#[derive(Clone)]
pub(crate) struct Smol {
    pub(crate) executor: Weak<Executor<'static>>,
}

impl Runtime for Smol {
    type Stream = Async<TcpStream>;
    type Listener = Async<TcpListener>;
    type Sleep = Timer;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        Timer::at(deadline)
    }

    fn reset(&self, sleep: &mut Timer, deadline: Instant) {
        sleep.set_at(deadline);
    }

    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<Option<T>> {
        // A panic becomes `None`; dropping the task cancels it.
        let Some(executor) = self.executor.upgrade() else {
            return Box::pin(std::future::ready(None));
        };
        let task = executor.spawn(AssertUnwindSafe(future).catch_unwind());
        Box::pin(async move { task.await.ok() })
    }

    fn poll_read(
        &self,
        control: &Async<TcpStream>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match control.get_ref().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(control.poll_readable(cx))?
                }
                read => return Poll::Ready(read),
            }
        }
    }

    fn poll_write(
        &self,
        control: &Async<TcpStream>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match control.get_ref().write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(control.poll_writable(cx))?
                }
                written => return Poll::Ready(written),
            }
        }
    }

    fn listener(&self, listener: TcpListener) -> io::Result<Async<TcpListener>> {
        Async::new(listener)
    }

    fn poll_accept(
        &self,
        listener: &Async<TcpListener>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Async<TcpStream>, SocketAddr)>> {
        loop {
            match listener.get_ref().accept() {
                Ok((stream, peer)) => return Poll::Ready(Async::new(stream).map(|s| (s, peer))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(listener.poll_readable(cx))?
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn connect(&self, target: SocketAddr) -> BoxFuture<io::Result<Async<TcpStream>>> {
        Box::pin(Async::<TcpStream>::connect(target))
    }

    fn std_stream(&self, data: Async<TcpStream>) -> io::Result<TcpStream> {
        data.into_inner()
    }
}
