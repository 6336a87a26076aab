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
/// grow memory, nor make the throttle forget a client it locked out. When
/// every remembered client is locked out, the clients without room are
/// counted together, as one (see [`LoginThrottle`]).
pub const MAX_REMEMBERED_ADDRESSES: usize = 10_000;

/// Counts failed logins per client and locks clients out.
///
/// A spray of addresses large enough to fill the table with lock-outs
/// must not switch the lock-out off for the next addresses: the clients the
/// table has no room for share one count (fail closed: while such an
/// attack lasts, a new client is locked out with the attacker's; the
/// clients already remembered are not).
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    clients: HashMap<IpAddr, Failures>,
    /// The shared count of the clients the table has no room for.
    overflow: Option<Failures>,
    /// No room can be made before then (the earliest lock-out of a full
    /// table ends): a full table is not scanned on every failure.
    no_room_until: Option<Instant>,
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
            overflow: None,
            no_room_until: None,
        }
    }

    /// Whether `ip` is locked out at `now`.
    pub fn is_locked_out(&self, ip: IpAddr, now: Instant) -> bool {
        match self.clients.get(&client_group(ip)) {
            Some(failures) => self.locks_out(failures, now),
            None => {
                self.is_full()
                    && self
                        .overflow
                        .as_ref()
                        .is_some_and(|shared| self.locks_out(shared, now))
            }
        }
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
        Attempt::Go
    }

    /// The check of an attempt begun with [`Attempt::Go`] ended at `now`: a
    /// failure counts from here on; a success does not take back earlier
    /// failures (a valid login between guesses must not reset the count).
    pub fn end_attempt(&mut self, ip: IpAddr, now: Instant, succeeded: bool) {
        let failures = match self.clients.get_mut(&client_group(ip)) {
            Some(failures) => Some(failures),
            None => self.overflow.as_mut(),
        };
        if let Some(failures) = failures {
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

    /// The failures of `client` as they count at `now` (failures older than
    /// the lock-out are forgotten): its own, or the shared ones of the
    /// clients the table has no room for.
    fn current(&mut self, client: IpAddr, now: Instant) -> &mut Failures {
        let lockout = self.lockout;
        let known = self.clients.contains_key(&client);
        let fresh = Failures {
            count: 0,
            in_flight: 0,
            last: now,
        };
        let failures = if known || !self.is_full() || self.make_room(now) {
            self.clients.entry(client).or_insert(fresh)
        } else {
            self.overflow.get_or_insert(fresh)
        };
        if now >= failures.last + lockout {
            failures.count = 0;
        }
        failures
    }

    fn is_full(&self) -> bool {
        self.clients.len() >= MAX_REMEMBERED_ADDRESSES
    }

    fn locks_out(&self, failures: &Failures, now: Instant) -> bool {
        failures.count >= self.max_failures && now < failures.last + self.lockout
    }

    /// Forgets clients that are not locked out and have no check in
    /// flight, oldest first, down to half the bound; whether there is room
    /// now. A lock-out is never forgotten: if every client is locked out,
    /// no room is made until the first lock-out ends.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.no_room_until.is_some_and(|until| now < until) {
            return false;
        }
        let mut by_age: Vec<(Instant, IpAddr)> = self
            .clients
            .iter()
            .filter(|(_, failures)| !self.locks_out(failures, now) && failures.in_flight == 0)
            .map(|(ip, failures)| (failures.last, *ip))
            .collect();
        by_age.sort_unstable();
        let excess = self
            .clients
            .len()
            .saturating_sub(MAX_REMEMBERED_ADDRESSES / 2);
        for (_, ip) in by_age.iter().take(excess) {
            self.clients.remove(ip);
        }
        if self.is_full() {
            let first_end = self.clients.values().map(|f| f.last + self.lockout).min();
            self.no_room_until = first_end;
            return false;
        }
        self.no_room_until = None;
        true
    }
}
