//! Cancelling work on a blocking thread: a thread cannot be stopped, but
//! it can look. The future that waits for the thread holds a
//! [`CancelOnDrop`]; the thread checks its [`Cancelled`] before each step
//! that would make the delivery visible, and gives up once the future is
//! gone (the relay gave up on the upload and told the device `451`).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cancels its [`Cancelled`] tokens when dropped, finished or not.
#[derive(Debug, Default)]
pub(crate) struct CancelOnDrop(Arc<AtomicBool>);

impl CancelOnDrop {
    /// A token for the blocking side.
    pub(crate) fn token(&self) -> Cancelled {
        Cancelled(self.0.clone())
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether the waiting future is gone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cancelled(Arc<AtomicBool>);

impl Cancelled {
    /// An error if the waiting future is gone.
    pub(crate) fn check(&self) -> io::Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the relay gave up on this upload",
            ))
        } else {
            Ok(())
        }
    }

    /// `reader`, failing its next read once cancelled.
    pub(crate) fn reader<R: Read>(&self, reader: R) -> CancellableRead<R> {
        CancellableRead {
            inner: reader,
            cancelled: self.clone(),
        }
    }
}

/// A reader that fails once its token is cancelled.
#[derive(Debug)]
pub(crate) struct CancellableRead<R> {
    inner: R,
    cancelled: Cancelled,
}

impl<R: Read> Read for CancellableRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.cancelled.check()?;
        // At most 1 MiB between checks.
        let len = buf.len().min(1 << 20);
        self.inner.read(&mut buf[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_stops_the_reader() {
        let guard = CancelOnDrop::default();
        let mut reader = guard.token().reader(&b"abc"[..]);
        let mut one = [0; 1];
        assert_eq!(reader.read(&mut one).expect("read"), 1);
        drop(guard);
        assert!(reader.read(&mut one).is_err());
        assert!(reader.cancelled.check().is_err());
    }
}
