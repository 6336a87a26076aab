//! The primitives an adapter's runtime gives the shared driver.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One runtime: its sockets, its timers, its tasks.
pub(crate) trait Runtime: Send + Sync + 'static {
    /// A control connection, read and written through `&self`.
    type Control: Send + Sync;
    /// A passive data listener.
    type Listener: Send + Sync;
    /// A data connection.
    type Data: Send + 'static;

    /// The runtime's clock.
    fn now(&self) -> Instant;
    /// Resolves at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
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
        control: &Self::Control,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;
    /// Writes reply bytes.
    fn poll_write(
        &self,
        control: &Self::Control,
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
    ) -> Poll<io::Result<(Self::Data, SocketAddr)>>;
    /// Connects to a client's active-mode address.
    fn connect(&self, target: SocketAddr) -> BoxFuture<io::Result<Self::Data>>;
    /// The std socket of a data connection, for the receiving thread.
    fn std_stream(&self, data: Self::Data) -> io::Result<std::net::TcpStream>;
}
