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

    /// How many of `want` bytes may be read now, once the thread has slept
    /// as long as the limits require; and how long it slept.
    pub(crate) fn allow(&self, want: usize) -> (usize, Duration) {
        let mut allowed = want as u64;
        let mut slept = Duration::ZERO;
        for bucket in [self.upload.as_ref(), self.total.as_deref()]
            .into_iter()
            .flatten()
        {
            allowed = take(bucket, allowed, &mut slept);
        }
        (usize::try_from(allowed).unwrap_or(want), slept)
    }
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
