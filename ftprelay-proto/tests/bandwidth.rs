//! The token bucket of `--max-upload-rate` and `--max-total-upload-rate`,
//! on the virtual clock: its burst, its pacing, its extremes, and the
//! property that no moment ever sees more than the burst plus the rate.

mod support;

use std::time::Duration;

use ftprelay_proto::TokenBucket;
use proptest::prelude::*;

#[test]
fn a_full_bucket_grants_its_burst_then_paces_the_rest() {
    let start = support::origin();
    let mut bucket = TokenBucket::new(100 * 1024);
    assert_eq!(bucket.take(1 << 20, start), Ok(100 * 1024));
    let wait = bucket.take(1 << 20, start).expect_err("empty");
    // 16 KiB at 100 KiB/s.
    assert_eq!(wait, Duration::from_nanos(160_000_000));
    assert_eq!(bucket.take(1 << 20, start + wait), Ok(16 * 1024));
    assert_eq!(bucket.take(0, start), Ok(0));
}

#[test]
fn a_slow_rate_still_grants_small_asks_and_waits_are_bounded() {
    let start = support::origin();
    let mut bucket = TokenBucket::new(1);
    assert_eq!(bucket.take(10, start), Ok(10));
    // Credit is one burst (64 KiB), then the rate.
    let mut bucket = TokenBucket::new(10);
    assert_eq!(bucket.take(u64::MAX, start), Ok(64 * 1024));
    let wait = bucket.take(u64::MAX, start).expect_err("empty");
    // Two bytes, a quarter second's worth at 10 bytes/s, no 16 KiB.
    assert_eq!(wait, Duration::from_millis(200));
}

#[test]
fn the_extreme_rates_neither_overflow_nor_stop() {
    let start = support::origin();
    // 0 is taken as 1 byte per second: slow, never stuck.
    let mut slowest = TokenBucket::new(0);
    assert_eq!(slowest.bytes_per_second(), 1);
    assert_eq!(slowest.take(u64::MAX, start), Ok(64 * 1024));
    assert_eq!(slowest.take(1, start), Err(Duration::from_secs(1)));
    // The fastest grants what is asked, even after a year.
    let mut fastest = TokenBucket::new(u64::MAX);
    assert_eq!(fastest.take(u64::MAX, start), Ok(u64::MAX));
    let later = start + Duration::from_secs(365 * 24 * 3600);
    assert_eq!(fastest.take(u64::MAX, later), Ok(u64::MAX));
}

#[test]
fn what_a_short_read_did_not_use_is_given_back() {
    let start = support::origin();
    let mut bucket = TokenBucket::new(100 * 1024);
    assert_eq!(bucket.take(100 * 1024, start), Ok(100 * 1024));
    // The read brought 1 byte of the grant: the rest is credit again,
    // never more than the bucket holds.
    bucket.refund(100 * 1024 - 1);
    assert_eq!(bucket.take(u64::MAX, start), Ok(100 * 1024 - 1));
    bucket.refund(u64::MAX);
    assert_eq!(bucket.take(u64::MAX, start), Ok(100 * 1024));
}

/// Byte-nanoseconds in a byte-second.
const NANOS: u128 = 1_000_000_000;

proptest! {
    /// Whatever is asked, whenever: what was granted by any moment is at
    /// most the burst plus the rate times the time since the start, and a
    /// wait, once over, is followed by a grant.
    #[test]
    fn never_more_than_the_burst_plus_the_rate(
        rate in 1u64..10_000_000,
        steps in prop::collection::vec((0u64..2_000_000_000, 0u64..(4 << 20)), 1..200),
    ) {
        let start = support::origin();
        let mut bucket = TokenBucket::new(rate);
        let burst = u128::from(rate.max(64 * 1024));
        let (mut now, mut granted) = (start, 0u128);
        for (advance_ns, want) in steps {
            now += Duration::from_nanos(advance_ns);
            match bucket.take(want, now) {
                Ok(n) => {
                    prop_assert!(n <= want);
                    prop_assert!(want == 0 || n >= 1);
                    granted += u128::from(n);
                }
                Err(wait) => {
                    prop_assert!(wait > Duration::ZERO);
                    let after = bucket.take(want, now + wait);
                    prop_assert!(after.is_ok(), "still waiting after {wait:?}");
                    granted += u128::from(after.unwrap_or(0));
                    now += wait;
                }
            }
            let since = now.duration_since(start).as_nanos();
            prop_assert!(granted * NANOS <= burst * NANOS + since * u128::from(rate));
        }
    }
}
