//! Failed logins counted per client address, across sessions: after too
//! many, the address is locked out for a while. Adapters keep one per relay
//! behind a lock; the session is told with [`crate::Input::LoginLockedOut`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The addresses remembered at most: beyond, the ones that failed longest
/// ago are forgotten, so a spray of addresses cannot grow memory.
pub const MAX_REMEMBERED_ADDRESSES: usize = 10_000;

/// Counts failed logins per address and locks addresses out.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    addresses: HashMap<IpAddr, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl LoginThrottle {
    /// Locks an address out for `lockout` after `max_failures` failed
    /// logins in a row (from any of its sessions). Failures older than the
    /// lock-out are forgotten.
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            lockout,
            addresses: HashMap::new(),
        }
    }

    /// Whether `ip` is locked out at `now`.
    pub fn is_locked_out(&self, ip: IpAddr, now: Instant) -> bool {
        self.addresses
            .get(&ip.to_canonical())
            .is_some_and(|failures| {
                failures.count >= self.max_failures && now < failures.last + self.lockout
            })
    }

    /// Counts a failed login of `ip` at `now`.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let lockout = self.lockout;
        let failures = self.addresses.entry(ip.to_canonical()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now >= failures.last + lockout {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        if self.addresses.len() > MAX_REMEMBERED_ADDRESSES {
            self.forget_oldest();
        }
    }

    /// Clears the failures of `ip` (an operator's decision: a successful
    /// login does not, or a guesser could interleave a known account).
    pub fn forgive(&mut self, ip: IpAddr) {
        self.addresses.remove(&ip.to_canonical());
    }

    /// How many addresses are remembered now (at most
    /// [`MAX_REMEMBERED_ADDRESSES`]): a figure for an operator's metrics.
    pub fn remembered_addresses(&self) -> usize {
        self.addresses.len()
    }

    fn forget_oldest(&mut self) {
        let mut by_age: Vec<(Instant, IpAddr)> =
            self.addresses.iter().map(|(ip, f)| (f.last, *ip)).collect();
        by_age.sort_unstable();
        for (_, ip) in by_age
            .iter()
            .take(self.addresses.len() - MAX_REMEMBERED_ADDRESSES / 2)
        {
            self.addresses.remove(ip);
        }
    }
}
