//! tokio's primitives for the relay of `ftprelay-io`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use ftprelay_io::{BoxFuture, Runtime};

/// The tokio runtime the relay was started on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tokio;

impl Runtime for Tokio {
    type Stream = TcpStream;
    type Listener = TcpListener;
    type Sleep = Pin<Box<tokio::time::Sleep>>;

    fn now(&self) -> Instant {
        // tokio's clock, so that a paused test clock applies.
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }

    fn reset(&self, sleep: &mut Self::Sleep, deadline: Instant) {
        sleep
            .as_mut()
            .reset(tokio::time::Instant::from_std(deadline));
    }

    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<Option<T>> {
        Box::pin(AbortOnDrop(tokio::spawn(future)))
    }

    fn poll_read(
        &self,
        control: &TcpStream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // Readiness, then try_read: tokio's AsyncRead takes a short read as
        // "drained", but the kernel also stops at the urgent mark of a
        // Telnet Synch (sent before ABOR) with the rest already there.
        loop {
            ready!(control.poll_read_ready(cx))?;
            match control.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                read => return Poll::Ready(read),
            }
        }
    }

    fn poll_write(
        &self,
        control: &TcpStream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(control.poll_write_ready(cx))?;
            match control.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(listener)
    }

    fn poll_accept(
        &self,
        listener: &TcpListener,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        listener.poll_accept(cx)
    }

    fn connect(&self, target: SocketAddr) -> BoxFuture<io::Result<TcpStream>> {
        Box::pin(TcpStream::connect(target))
    }

    fn std_stream(&self, data: TcpStream) -> io::Result<std::net::TcpStream> {
        data.into_std()
    }
}

/// A spawned task's output (`None` if it panicked); dropping it aborts the
/// task, as smol's tasks do.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.0).poll(cx).map(Result::ok)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
