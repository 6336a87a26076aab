//! The per-address login throttle, on the virtual clock.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use ftprelay_proto::{LoginThrottle, MAX_REMEMBERED_ADDRESSES};
use support::origin;

#[test]
fn locks_out_after_the_limit_then_forgives() {
    let t0 = origin();
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let other: IpAddr = "::ffff:127.0.0.2".parse().expect("ip");
    let mut throttle = LoginThrottle::new(3, Duration::from_secs(60));
    for second in 0..2 {
        throttle.record_failure(ip, t0 + Duration::from_secs(second));
    }
    assert!(!throttle.is_locked_out(ip, t0 + Duration::from_secs(2)));
    throttle.record_failure(ip, t0 + Duration::from_secs(2));
    assert!(throttle.is_locked_out(ip, t0 + Duration::from_secs(3)));
    assert!(!throttle.is_locked_out(other, t0 + Duration::from_secs(3)));
    assert!(!throttle.is_locked_out(ip, t0 + Duration::from_secs(62)));
    throttle.record_failure(ip, t0 + Duration::from_secs(63));
    assert!(
        !throttle.is_locked_out(ip, t0 + Duration::from_secs(63)),
        "old failures are forgotten"
    );
    throttle.forgive(ip);
    assert!(!throttle.is_locked_out(ip, t0 + Duration::from_secs(64)));
}

#[test]
fn memory_stays_bounded() {
    let t0 = origin();
    let mut throttle = LoginThrottle::new(3, Duration::from_secs(60));
    for i in 0..(MAX_REMEMBERED_ADDRESSES as u32 + 10) {
        throttle.record_failure(
            IpAddr::from(i.to_be_bytes()),
            t0 + Duration::from_millis(u64::from(i)),
        );
    }
    assert!(throttle.remembered_addresses() <= MAX_REMEMBERED_ADDRESSES);
    assert!(throttle.remembered_addresses() > 0);
}
