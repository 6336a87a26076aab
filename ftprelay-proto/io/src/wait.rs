//! Waiting with a bound: the relay never waits for a peer without one.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use crate::runtime::Runtime;

/// Runs `future` for at most `limit`: whether it finished in time.
pub(crate) async fn within<R: Runtime>(
    runtime: &R,
    limit: Duration,
    future: impl Future<Output = ()>,
) -> bool {
    let mut future = pin!(future);
    let mut timer = runtime.sleep_until(runtime.now() + limit);
    std::future::poll_fn(|cx| {
        if future.as_mut().poll(cx).is_ready() {
            Poll::Ready(true)
        } else if Pin::new(&mut timer).poll(cx).is_ready() {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Writes `bytes` to `stream` for at most `limit`, stopping at the first
/// error (the peer is gone): how many were written.
pub(crate) async fn write_within<R: Runtime>(
    runtime: &R,
    stream: &R::Stream,
    bytes: &[u8],
    limit: Duration,
) -> usize {
    let mut written = 0;
    let write = std::future::poll_fn(|cx| {
        while written < bytes.len() {
            match runtime.poll_write(stream, cx, &bytes[written..]) {
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    });
    within(runtime, limit, write).await;
    written
}
