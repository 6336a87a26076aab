//! The per-address login throttle, on the virtual clock.

use std::net::IpAddr;
use std::time::Duration;

use ftprelay_io::{Attempt, LoginThrottle, MAX_REMEMBERED_ADDRESSES};

/// The origin of the virtual clock: the one clock read of these tests;
/// every other instant is derived from it.
fn origin() -> std::time::Instant {
    std::time::Instant::now()
}

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

#[test]
fn attempts_count_while_in_flight_and_the_rest_wait() {
    let t0 = origin();
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let mut throttle = LoginThrottle::new(3, Duration::from_secs(60));
    // A burst of ten checks at once: three may run, the others wait.
    let verdicts: Vec<Attempt> = (0..10).map(|_| throttle.begin_attempt(ip, t0)).collect();
    assert_eq!(verdicts.iter().filter(|v| **v == Attempt::Go).count(), 3);
    assert!(verdicts[3..].iter().all(|v| *v == Attempt::Wait));
    // The three fail: the client is locked out, the rest never run.
    for _ in 0..3 {
        throttle.end_attempt(ip, t0, false);
    }
    assert_eq!(throttle.begin_attempt(ip, t0), Attempt::LockedOut);
    // Twenty sessions of a device logging in right at once all get in, in
    // turns, and the device is never locked out.
    let device: IpAddr = "127.0.0.2".parse().expect("ip");
    let mut admitted = 0;
    for n in 0..20 {
        let now = t0 + Duration::from_millis(n);
        let mut running = 0;
        while throttle.begin_attempt(device, now) == Attempt::Go {
            running += 1;
        }
        assert!(running > 0, "nobody may log in");
        for _ in 0..running {
            throttle.end_attempt(device, now, true);
        }
        admitted += running;
    }
    assert!(admitted >= 20);
    assert!(!throttle.is_locked_out(device, t0 + Duration::from_secs(1)));
}

#[test]
fn a_flood_of_other_addresses_does_not_forgive_a_locked_out_one() {
    let t0 = origin();
    let guesser: IpAddr = "192.0.2.1".parse().expect("ip");
    let mut throttle = LoginThrottle::new(3, Duration::from_secs(600));
    for _ in 0..3 {
        throttle.record_failure(guesser, t0);
    }
    for i in 0..(3 * MAX_REMEMBERED_ADDRESSES as u32) {
        let ip = IpAddr::from((0x0A00_0000 + i).to_be_bytes());
        throttle.record_failure(ip, t0 + Duration::from_millis(1 + u64::from(i) % 500));
    }
    assert!(throttle.remembered_addresses() <= MAX_REMEMBERED_ADDRESSES);
    assert!(throttle.is_locked_out(guesser, t0 + Duration::from_secs(1)));
}

#[test]
fn ipv6_clients_are_counted_per_64() {
    let t0 = origin();
    let mut throttle = LoginThrottle::new(3, Duration::from_secs(600));
    for host in 1..=3u16 {
        let ip = IpAddr::from([0x2001, 0xdb8, 0, 7, host, 0, 0, 1]);
        throttle.record_failure(ip, t0);
    }
    let sibling = IpAddr::from([0x2001, 0xdb8, 0, 7, 0xffff, 0, 0, 9]);
    let neighbour = IpAddr::from([0x2001, 0xdb8, 0, 8, 0, 0, 0, 1]);
    assert!(throttle.is_locked_out(sibling, t0));
    assert!(!throttle.is_locked_out(neighbour, t0));
}

#[test]
fn a_table_full_of_lock_outs_stays_bounded_and_keeps_them() {
    let t0 = origin();
    let mut throttle = LoginThrottle::new(1, Duration::from_secs(600));
    let ip = |i: u32| IpAddr::from((0x0A00_0000 + i).to_be_bytes());
    for i in 0..(MAX_REMEMBERED_ADDRESSES as u32 + 100) {
        throttle.record_failure(ip(i), t0);
    }
    assert_eq!(throttle.remembered_addresses(), MAX_REMEMBERED_ADDRESSES);
    assert!(throttle.is_locked_out(ip(0), t0));
}

#[test]
fn a_table_full_of_lock_outs_locks_out_the_next_addresses_together() {
    let t0 = origin();
    let mut throttle = LoginThrottle::new(3, Duration::from_secs(600));
    let ip = |i: u32| IpAddr::from((0x0A00_0000 + i).to_be_bytes());
    for i in 0..MAX_REMEMBERED_ADDRESSES as u32 {
        for _ in 0..3 {
            throttle.record_failure(ip(i), t0);
        }
    }
    // Fresh addresses now: none may guess without limit.
    let fresh = |n: u32| IpAddr::from((0x0B00_0000 + n).to_be_bytes());
    let mut checked = 0;
    for n in 0..100 {
        match throttle.begin_attempt(fresh(n), t0) {
            Attempt::Go => {
                checked += 1;
                throttle.end_attempt(fresh(n), t0, false);
            }
            Attempt::LockedOut => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 3, "the fresh addresses share one count");
    assert!(throttle.is_locked_out(fresh(1_000), t0));
    assert_eq!(throttle.remembered_addresses(), MAX_REMEMBERED_ADDRESSES);
    // The remembered ones are still locked out, and once the lock-outs end
    // there is room again: a fresh address has a count of its own.
    assert!(throttle.is_locked_out(ip(7), t0));
    let later = t0 + Duration::from_secs(601);
    assert!(throttle.begin_attempt(fresh(2_000), later) == Attempt::Go);
    throttle.end_attempt(fresh(2_000), later, false);
    assert!(!throttle.is_locked_out(fresh(2_001), later));
}
