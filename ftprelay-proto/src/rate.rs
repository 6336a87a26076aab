//! The lowest average rate an upload may arrive at. The stall timeout
//! bounds each wait for a byte; this bounds the whole upload, so that one
//! byte every few seconds cannot hold a data connection, a thread and a
//! spool file open forever. The adapter reads the clock; this decides.

use std::time::Duration;

/// An upload averaging fewer than `bytes_per_second` once `grace` has
/// passed since its first byte could arrive is aborted
/// ([`crate::TransferEnd::TooSlow`], answered `426`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimumRate {
    /// The lowest average accepted, in bytes per second; 0 switches the
    /// check off.
    pub bytes_per_second: u64,
    /// How long an upload may take before its average counts: a slow start
    /// (a device waking up, a TCP window opening) is no offence.
    pub grace: Duration,
}

impl MinimumRate {
    /// No minimum: only the stall timeout ends a slow upload.
    pub const OFF: Self = Self {
        bytes_per_second: 0,
        grace: Duration::ZERO,
    };

    /// Whether `received` bytes after `elapsed` are too few.
    pub fn is_too_slow(&self, received: u64, elapsed: Duration) -> bool {
        if self.bytes_per_second == 0 || elapsed <= self.grace {
            return false;
        }
        // Whole milliseconds, in u128: no overflow for any duration or rate.
        let expected = u128::from(self.bytes_per_second) * elapsed.as_millis() / 1000;
        u128::from(received) < expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_slow_average_after_the_grace_is_too_slow() {
        let rate = MinimumRate {
            bytes_per_second: 1024,
            grace: Duration::from_secs(60),
        };
        // Nothing yet, within the grace: fine.
        assert!(!rate.is_too_slow(0, Duration::from_secs(60)));
        // After the grace, the average counts from the start.
        assert!(rate.is_too_slow(61 * 1024 - 1, Duration::from_secs(61)));
        assert!(!rate.is_too_slow(61 * 1024, Duration::from_secs(61)));
        // A fast start covers a slow end, as an average does.
        assert!(!rate.is_too_slow(10 << 20, Duration::from_secs(600)));
        assert!(!MinimumRate::OFF.is_too_slow(0, Duration::MAX));
        assert!(rate.is_too_slow(u64::MAX / 2, Duration::MAX));
    }
}
