//! Failed logins counted per client, across sessions: after too many, the
//! client is locked out for a while. Adapters keep one per relay behind a
//! lock; the session is told with [`proto::LoginVerdict::LockedOut`].
//!
//! A login attempt counts against the limit from the moment its check
//! starts ([`LoginThrottle::begin_attempt`]) until it ends
//! ([`LoginThrottle::end_attempt`]): a client may have only as many checks
//! in flight as it has failures left, so a burst of guesses sent at once is
//! stopped at the limit, not after every guess of the burst was checked.
//! The attempts beyond wait their turn ([`Attempt::Wait`]): twenty sessions
//! of one camera logging in at once all get in.

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
    /// Checks begun and not ended yet.
    in_flight: u32,
    last: Instant,
}

/// Whether a login may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attempt {
    /// Check it, then call [`LoginThrottle::end_attempt`].
    Go,
    /// So many checks of this client are in flight that one more could
    /// pass the limit: ask again shortly.
    Wait,
    /// The client is locked out: refuse it ([`proto::LoginVerdict::LockedOut`]).
    LockedOut,
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

    /// A login of `ip` is to be checked at `now`: whether it may be now.
    /// A [`Attempt::Go`] counts against the limit until its
    /// [`LoginThrottle::end_attempt`].
    pub fn begin_attempt(&mut self, ip: IpAddr, now: Instant) -> Attempt {
        if self.is_locked_out(ip, now) {
            return Attempt::LockedOut;
        }
        let (max, client) = (self.max_failures, client_group(ip));
        let failures = self.current(client, now);
        if failures.count + failures.in_flight >= max {
            return Attempt::Wait;
        }
        failures.in_flight += 1;
        if self.clients.len() > MAX_REMEMBERED_ADDRESSES {
            self.forget_oldest(now, client);
        }
        Attempt::Go
    }

    /// The check of an attempt begun with [`Attempt::Go`] ended at `now`: a
    /// failure counts from here on; a success does not take back earlier
    /// failures (a valid login between guesses must not reset the count).
    pub fn end_attempt(&mut self, ip: IpAddr, now: Instant, succeeded: bool) {
        if let Some(failures) = self.clients.get_mut(&client_group(ip)) {
            failures.in_flight = failures.in_flight.saturating_sub(1);
        }
        if !succeeded {
            self.record_failure(ip, now);
        }
    }

    /// Counts a failed login of `ip` at `now`.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let client = client_group(ip);
        let failures = self.current(client, now);
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

    /// The failures of `client` as they count at `now`: failures older than
    /// the lock-out are forgotten.
    fn current(&mut self, client: IpAddr, now: Instant) -> &mut Failures {
        let lockout = self.lockout;
        let failures = self.clients.entry(client).or_insert(Failures {
            count: 0,
            in_flight: 0,
            last: now,
        });
        if now >= failures.last + lockout {
            failures.count = 0;
        }
        failures
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
            .filter(|(_, failures)| !self.locks_out(failures, now) && failures.in_flight == 0)
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
