//! `--max-upload-rate` and `--max-total-upload-rate` on the data thread:
//! before each read, the thread sleeps for as long as the token buckets
//! (`proto::TokenBucket`, the arithmetic) say. No busy waiting, and the
//! client is slowed by TCP's flow control: what is not read is not sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::TokenBucket;

/// The buckets one upload draws from: its own, and the relay's.
pub(crate) struct Throttle {
    upload: Option<Mutex<TokenBucket>>,
    total: Option<Arc<Mutex<TokenBucket>>>,
}

impl Throttle {
    /// An upload limited to `max_rate` bytes per second (its own bucket),
    /// and by `total` (shared with every other upload).
    pub(crate) fn new(max_rate: Option<u64>, total: Option<Arc<Mutex<TokenBucket>>>) -> Self {
        Self {
            upload: max_rate.map(|rate| Mutex::new(TokenBucket::new(rate))),
            total,
        }
    }

    /// Whether no maximum rate applies.
    pub(crate) fn is_unlimited(&self) -> bool {
        self.upload.is_none() && self.total.is_none()
    }

    /// How many of `want` bytes may be read now, once the thread has slept
    /// as long as the limits require; and how long it slept. What the read
    /// then does not use goes back with [`Throttle::used`].
    pub(crate) fn allow(&self, want: usize) -> (usize, Duration) {
        let mut slept = Duration::ZERO;
        let Some(first) = self.upload.as_ref().or(self.total.as_deref()) else {
            return (want, slept);
        };
        let mut allowed = take(first, want as u64, &mut slept);
        if let (Some(upload), Some(total)) = (&self.upload, &self.total) {
            // The relay's bucket may grant less: the upload's own gets the
            // rest back.
            let granted = take(total, allowed, &mut slept);
            refund(upload, allowed - granted);
            allowed = granted;
        }
        (usize::try_from(allowed).unwrap_or(want), slept)
    }

    /// `read` bytes of the `allowed` were read: the rest goes back to
    /// every bucket.
    pub(crate) fn used(&self, allowed: usize, read: usize) {
        let unused = allowed.saturating_sub(read) as u64;
        if unused == 0 {
            return;
        }
        for bucket in [self.upload.as_ref(), self.total.as_deref()]
            .into_iter()
            .flatten()
        {
            refund(bucket, unused);
        }
    }
}

fn refund(bucket: &Mutex<TokenBucket>, unused: u64) {
    bucket
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .refund(unused);
}

/// Takes up to `want` bytes from `bucket`, sleeping until some may go.
fn take(bucket: &Mutex<TokenBucket>, want: u64, slept: &mut Duration) -> u64 {
    loop {
        let taken = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(want, Instant::now());
        match taken {
            Ok(granted) => return granted,
            Err(wait) => {
                std::thread::sleep(wait);
                *slept += wait;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_sending_a_byte_at_a_time_is_charged_a_byte_at_a_time() {
        let total = Arc::new(Mutex::new(TokenBucket::new(100 * 1024)));
        let throttle = Throttle::new(Some(200 * 1024), Some(total.clone()));
        // The relay's bucket is the smaller: the upload's gets the rest back.
        let (allowed, slept) = throttle.allow(256 * 1024);
        assert_eq!((allowed, slept), (100 * 1024, Duration::ZERO));
        // Each read brings one byte: the rest goes back to both buckets,
        // so the next read is allowed nearly as much again, at once.
        let mut granted = allowed;
        for _ in 0..1000 {
            throttle.used(granted, 1);
            let (again, slept) = throttle.allow(256 * 1024);
            assert_eq!(slept, Duration::ZERO, "charged for what never came");
            assert!(again >= 100 * 1024 - 1000, "{again}");
            granted = again;
        }
    }
}
