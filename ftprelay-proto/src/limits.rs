//! Connection accounting: how many control connections, in total and per
//! client address. Adapters keep one counter per relay behind a lock.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::reply::{Reply, ReplyCode};

/// Why a new control connection is refused. Answered `421`, then closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TooManyConnections {
    /// The relay holds its maximum of connections.
    Total,
    /// This client address holds its maximum of connections.
    PerAddress,
}

impl TooManyConnections {
    /// The reply the refused client gets before the connection closes.
    pub fn reply(self) -> Reply {
        let text = match self {
            Self::Total => "Too many connections; try again later.",
            Self::PerAddress => "Too many connections from your address; try again later.",
        };
        Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, text)
    }
}

/// Counts open control connections against the limits.
#[derive(Debug, Clone)]
pub struct ConnectionCounter {
    max_total: usize,
    max_per_address: usize,
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

impl ConnectionCounter {
    /// A counter allowing `max_total` connections, `max_per_address` of
    /// them from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            max_total,
            max_per_address,
            total: 0,
            per_address: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`, or refuses it. IPv4-mapped IPv6
    /// addresses count as their IPv4 address.
    pub fn try_open(&mut self, ip: IpAddr) -> Result<(), TooManyConnections> {
        if self.total >= self.max_total {
            return Err(TooManyConnections::Total);
        }
        let count = self.per_address.entry(ip.to_canonical()).or_insert(0);
        if *count >= self.max_per_address {
            return Err(TooManyConnections::PerAddress);
        }
        *count += 1;
        self.total += 1;
        Ok(())
    }

    /// Forgets a connection counted by [`ConnectionCounter::try_open`].
    pub fn close(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count -= 1;
            self.total -= 1;
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
    }

    /// The connections open now.
    pub fn open(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_address() {
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        let mut counter = ConnectionCounter::new(3, 2);
        assert_eq!(counter.try_open(a), Ok(()));
        assert_eq!(counter.try_open(mapped), Ok(()));
        assert_eq!(counter.try_open(a), Err(TooManyConnections::PerAddress));
        assert_eq!(counter.try_open(b), Ok(()));
        assert_eq!(counter.try_open(b), Err(TooManyConnections::Total));
        counter.close(mapped);
        assert_eq!(counter.try_open(a), Ok(()));
        assert_eq!(counter.open(), 3);
        assert_eq!(TooManyConnections::Total.reply().code().as_u16(), 421);
    }
}
