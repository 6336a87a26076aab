//! The most bytes per second an upload (or all uploads together) may
//! arrive at: a token bucket. The adapter reads the clock and sleeps its
//! data thread for as long as this says; the arithmetic is here, so that
//! it is the same for every runtime and testable with a virtual clock.

use std::time::{Duration, Instant};

/// Reads are never granted in pieces smaller than this (unless less is
/// asked for): a throttled upload costs few, large reads.
const SMALLEST_GRANT: u64 = 16 * 1024;

/// Nanoseconds in a second: credit is kept in byte-nanoseconds, so that no
/// fraction of a byte is lost however often it is asked.
const NANOS: u128 = 1_000_000_000;

/// A token bucket of `bytes_per_second`, holding at most one second's
/// worth (and at least 64 KiB): after a pause, an upload may catch up by
/// that much, no more.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    bytes_per_second: u64,
    /// At most this much credit, in byte-nanoseconds.
    capacity: u128,
    /// Credit now, in byte-nanoseconds.
    credit: u128,
    /// When `credit` was last brought up to date.
    at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Self {
        let bytes_per_second = bytes_per_second.max(1);
        let burst = bytes_per_second.max(64 * 1024);
        let capacity = u128::from(burst) * NANOS;
        Self {
            bytes_per_second,
            capacity,
            credit: capacity,
            at: None,
        }
    }

    /// The rate, in bytes per second.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes up to `want` bytes at `now`: `Ok(n)` bytes (1 ≤ n ≤ `want`)
    /// may be read now, or `Err(wait)`: ask again after `wait`. `want` 0
    /// is granted at once.
    pub fn take(&mut self, want: u64, now: Instant) -> Result<u64, Duration> {
        if want == 0 {
            return Ok(0);
        }
        self.refill(now);
        let whole = u64::try_from(self.credit / NANOS).unwrap_or(u64::MAX);
        // A quarter of a second's worth at most, so that a slow rate is
        // paced in short waits, not one long one.
        let enough = want
            .min(SMALLEST_GRANT)
            .min((self.bytes_per_second / 4).max(1));
        if whole >= enough {
            let granted = want.min(whole);
            self.credit -= u128::from(granted) * NANOS;
            return Ok(granted);
        }
        let missing = u128::from(enough) * NANOS - self.credit;
        let nanos = missing.div_ceil(u128::from(self.bytes_per_second));
        Err(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    /// Gives back `unused` bytes of a grant (a read returned fewer than
    /// it was allowed): a client sending little at a time is charged for
    /// what it sent, not for what it could have.
    pub fn refund(&mut self, unused: u64) {
        let credit = self.credit.saturating_add(u128::from(unused) * NANOS);
        self.credit = credit.min(self.capacity);
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_nanos();
            let earned = elapsed.saturating_mul(u128::from(self.bytes_per_second));
            self.credit = self.credit.saturating_add(earned).min(self.capacity);
        }
        // A clock that went backwards earns nothing and moves nothing.
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }
}
