//! Where the network destinations' futures run.
//!
//! The clients this crate builds on (reqwest, lettre, russh) need a tokio
//! reactor. Under a tokio relay they run on its runtime; anywhere else (the
//! smol relay, async-std, a plain `block_on`) on one small tokio runtime
//! of this crate's, started on first use. Either way the caller awaits a
//! handle that any executor can poll, and dropping it cancels the work: a
//! delivery the relay gave up on (the processing timeout, a session gone)
//! stops then, and never completes after the device was told `451`.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use ftprelay_proto::ProcessError;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Worker threads of the runtime started when the caller has none: the
/// work is network waits, not computation.
const WORKERS: usize = 2;

/// Runs `work` on a tokio runtime and waits for it; dropping the returned
/// future aborts `work`.
pub(crate) async fn on_tokio<T, F>(work: F) -> Result<T, ProcessError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = match Handle::try_current() {
        Ok(handle) => handle,
        Err(_) => shared()?.handle().clone(),
    };
    Aborting(handle.spawn(work))
        .await
        .map_err(|e| ProcessError::transient(format!("the delivery task failed: {e}")))
}

/// The runtime of callers that have none.
fn shared() -> Result<&'static Runtime, ProcessError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("ftprelay-deliver")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ProcessError::transient(format!("cannot start the delivery runtime: {e}")))
}

/// A join handle that aborts its task when dropped unfinished.
struct Aborting<T>(JoinHandle<T>);

impl<T> Future for Aborting<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn work_runs_without_a_runtime_of_the_callers() {
        let answer = smol::block_on(on_tokio(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            42
        }));
        assert_eq!(answer, Ok(42));
    }

    #[test]
    fn dropping_the_wait_cancels_the_work() {
        /// Tells when the task's future is dropped, finished or not.
        struct Dropped(std::sync::mpsc::Sender<()>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let finished = Arc::new(AtomicBool::new(false));
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
        let flag = finished.clone();
        let wait = on_tokio(async move {
            let _guard = Dropped(dropped_tx);
            tokio::time::sleep(Duration::from_secs(60)).await;
            flag.store(true, Ordering::SeqCst);
        });
        smol::block_on(async {
            let mut wait = std::pin::pin!(wait);
            // Poll once, so that the task is spawned, then give up on it.
            let _ = futures_lite::future::poll_once(wait.as_mut()).await;
        });
        // Sent by the guard, or disconnected when the task was aborted
        // before it first ran: either way its future is gone.
        let gone = dropped_rx.recv_timeout(Duration::from_secs(5));
        assert_ne!(
            gone,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "the task was left running"
        );
        assert!(!finished.load(Ordering::SeqCst));
    }
}
