//! The primitives a runtime gives the relay: sockets, timers, tasks.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One runtime: its sockets, its timers, its tasks. Everything else of a
/// relay is written once, over this trait. Implement it to run a relay on
/// another executor; `ftprelay-tokio` and `ftprelay-smol` are the models.
/// A clone is a handle to the same runtime (futures of the relay's own
/// hold one).
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A TCP connection (control or data), read and written through
    /// `&self`. Its descriptor is used for socket options and addresses.
    type Stream: AsFd + Send + Sync + 'static;
    /// A TCP listener (control or passive data).
    type Listener: Send + Sync + 'static;

    /// The runtime's clock.
    fn now(&self) -> Instant;
    /// A timer. The driver moves one to each new deadline of its session
    /// ([`Runtime::reset`]) instead of allocating one per deadline.
    /// Its output is ignored.
    type Sleep: Future + Send + Unpin + 'static;

    /// A timer that resolves at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
    /// Moves `sleep` to `deadline` (it resolves again, at the new one).
    fn reset(&self, sleep: &mut Self::Sleep, deadline: Instant);
    /// Runs `future` as a task of its own. The returned future resolves to
    /// its output, or `None` if it panicked; dropping it cancels the task.
    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<Option<T>>;

    /// Reads control bytes. Must not take a short read as "drained": the
    /// kernel stops a read at the urgent mark of a Telnet Synch.
    fn poll_read(
        &self,
        stream: &Self::Stream,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;
    /// Writes reply bytes.
    fn poll_write(
        &self,
        stream: &Self::Stream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>>;

    /// Registers a bound std listener with the runtime.
    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener>;
    /// Accepts a data connection.
    fn poll_accept(
        &self,
        listener: &Self::Listener,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Stream, SocketAddr)>>;
    /// Connects to a client's active-mode address.
    fn connect(&self, target: SocketAddr) -> BoxFuture<io::Result<Self::Stream>>;
    /// The std socket of a data connection, for the receiving thread.
    fn std_stream(&self, stream: Self::Stream) -> io::Result<std::net::TcpStream>;
}
