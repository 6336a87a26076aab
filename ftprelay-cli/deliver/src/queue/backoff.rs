//! When a failed delivery is tried again: exponential back-off with
//! jitter, as mail servers do, until the upload is too old.

use std::time::Duration;

/// The retry policy of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure. One minute.
    pub first: Duration,
    /// The longest delay: doubling stops here. One hour.
    pub cap: Duration,
    /// How long an upload may wait for its destinations, from its
    /// receipt, before it is given up on (moved to `failed/`). Five days,
    /// as Postfix keeps mail.
    pub max_age: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(60),
            cap: Duration::from_secs(3600),
            max_age: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempts` (1 for the first),
    /// `first × 2^(attempts−1)` capped at `cap`, then spread by ±20 % with
    /// `random` (any value: uniform over `u64`), so that the uploads of one
    /// outage do not all come back in the same second.
    pub fn delay(&self, attempts: u32, random: u64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(62);
        let base = self
            .first
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.cap, |d| d.min(self.cap));
        let base = if doublings > 31 { self.cap } else { base };
        // 0.8 + 0.4 × random/2^64: per mille, to stay in integers.
        let per_mille = 800 + ((u128::from(random) * 400) >> 64) as u64;
        let nanos = base.as_nanos() * u128::from(per_mille) / 1000;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_minute_doubling_to_an_hour() {
        let policy = Backoff::default();
        let middle = 1u64 << 63;
        let secs = |n| policy.delay(n, middle).as_secs();
        assert_eq!(
            (1..=8).map(secs).collect::<Vec<_>>(),
            [60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        assert_eq!(secs(u32::MAX), 3600);
        assert_eq!(policy.delay(1, 0), Duration::from_secs(48));
        assert!(policy.delay(1, u64::MAX) < Duration::from_secs(72));
    }

    proptest! {
        #[test]
        fn delays_stay_within_a_fifth_of_the_doubling(attempts in 0u32..100, random: u64, first_ms in 1u64..100_000, cap_ms in 1u64..10_000_000) {
            let policy = Backoff {
                first: Duration::from_millis(first_ms),
                cap: Duration::from_millis(cap_ms),
                max_age: Duration::from_secs(1),
            };
            let doubled = u128::from(first_ms) << attempts.saturating_sub(1).min(100);
            let base = doubled.min(u128::from(cap_ms)) as f64;
            let delay = policy.delay(attempts, random).as_secs_f64() * 1000.0;
            prop_assert!(delay >= base * 0.8 - 0.001 && delay <= base * 1.2 + 0.001, "{} vs {}", delay, base);
        }
    }
}
