//! Failed logins counted per client, across sessions: after too many, the
//! client is locked out for a while. Adapters keep one per relay behind a
//! lock; the session is told with [`crate::Input::LoginLockedOut`].
//!
//! A login attempt counts as a failure from the moment its check starts
//! ([`LoginThrottle::begin_attempt`]) and is taken back if it succeeds
//! ([`LoginThrottle::attempt_succeeded`]): a burst of guesses sent at once
//! is stopped at the limit, not after every guess of the burst was checked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::limits::client_group;

/// The clients remembered at most: beyond, the ones that failed longest ago
/// and are not locked out are forgotten, so a spray of addresses cannot
/// grow memory, nor make the throttle forget a client it locked out.
pub const MAX_REMEMBERED_ADDRESSES: usize = 10_000;

/// Counts failed logins per client and locks clients out.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    clients: HashMap<IpAddr, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl LoginThrottle {
    /// Locks a client out for `lockout` after `max_failures` failed logins
    /// (from any of its sessions). Failures older than the lock-out are
    /// forgotten. A client is an IPv4 address, or an IPv6 /64 (one host's
    /// usual share: counting single IPv6 addresses would give each guesser
    /// 2^64 tries).
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            lockout,
            clients: HashMap::new(),
        }
    }

    /// Whether `ip` is locked out at `now`.
    pub fn is_locked_out(&self, ip: IpAddr, now: Instant) -> bool {
        self.clients
            .get(&client_group(ip))
            .is_some_and(|failures| self.locks_out(failures, now))
    }

    /// A login of `ip` is about to be checked at `now`: `false` if the
    /// client is locked out (do not check it), else the attempt is counted
    /// as a failure until [`LoginThrottle::attempt_succeeded`] says
    /// otherwise.
    pub fn begin_attempt(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.is_locked_out(ip, now) {
            return false;
        }
        self.record_failure(ip, now);
        true
    }

    /// The attempt of `ip` begun with [`LoginThrottle::begin_attempt`]
    /// succeeded: it no longer counts. (Earlier failures still do: a valid
    /// login between guesses must not reset the count.)
    pub fn attempt_succeeded(&mut self, ip: IpAddr) {
        if let Some(failures) = self.clients.get_mut(&client_group(ip)) {
            failures.count = failures.count.saturating_sub(1);
        }
    }

    /// Counts a failed login of `ip` at `now`.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let (lockout, client) = (self.lockout, client_group(ip));
        let failures = self.clients.entry(client).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now >= failures.last + lockout {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        if self.clients.len() > MAX_REMEMBERED_ADDRESSES {
            self.forget_oldest(now, client);
        }
    }

    /// Clears the failures of `ip` (an operator's decision: a successful
    /// login does not, or a guesser could interleave a known account).
    pub fn forgive(&mut self, ip: IpAddr) {
        self.clients.remove(&client_group(ip));
    }

    /// How many clients are remembered now (at most
    /// [`MAX_REMEMBERED_ADDRESSES`]): a figure for an operator's metrics.
    pub fn remembered_addresses(&self) -> usize {
        self.clients.len()
    }

    fn locks_out(&self, failures: &Failures, now: Instant) -> bool {
        failures.count >= self.max_failures && now < failures.last + self.lockout
    }

    /// Forgets clients that are not locked out, oldest first, down to half
    /// the bound. If every client is locked out, the table stays full and
    /// the entry just added is dropped instead: a lock-out is never
    /// forgotten.
    fn forget_oldest(&mut self, now: Instant, just_added: IpAddr) {
        let mut by_age: Vec<(Instant, IpAddr)> = self
            .clients
            .iter()
            .filter(|(_, failures)| !self.locks_out(failures, now))
            .map(|(ip, failures)| (failures.last, *ip))
            .collect();
        by_age.sort_unstable();
        let excess = self.clients.len() - MAX_REMEMBERED_ADDRESSES / 2;
        for (_, ip) in by_age.iter().take(excess) {
            self.clients.remove(ip);
        }
        if self.clients.len() > MAX_REMEMBERED_ADDRESSES {
            self.clients.remove(&just_added);
        }
    }
}
