//! Connection accounting: how many control connections, in total and per
//! client address. Adapters keep one counter per relay behind a lock.

use std::collections::HashMap;
use std::net::IpAddr;

use proto::{Reply, ReplyCode};

/// The client an address belongs to, as limits and the login throttle
/// count them: an IPv4 address (IPv4-mapped IPv6 too) as itself, an IPv6
/// address by its /64 prefix, the share one site usually gets: counted one
/// by one, a single host could open 2^64 "clients".
pub fn client_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

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

    /// Counts a new connection from `ip`, or refuses it. Addresses are
    /// counted per client ([`client_group`]): IPv4-mapped IPv6 addresses as
    /// their IPv4 address, IPv6 per /64.
    pub fn try_open(&mut self, ip: IpAddr) -> Result<(), TooManyConnections> {
        if self.total >= self.max_total {
            return Err(TooManyConnections::Total);
        }
        let count = self.per_address.entry(client_group(ip)).or_insert(0);
        if *count >= self.max_per_address {
            return Err(TooManyConnections::PerAddress);
        }
        *count += 1;
        self.total += 1;
        Ok(())
    }

    /// Forgets a connection counted by [`ConnectionCounter::try_open`].
    pub fn close(&mut self, ip: IpAddr) {
        let ip = client_group(ip);
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

    #[test]
    fn ipv6_counts_per_64() {
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        let mut counter = ConnectionCounter::new(10, 2);
        assert_eq!(counter.try_open(ip("2001:db8:1:2::1")), Ok(()));
        assert_eq!(counter.try_open(ip("2001:db8:1:2:ffff::9")), Ok(()));
        assert_eq!(
            counter.try_open(ip("2001:db8:1:2:abcd::1")),
            Err(TooManyConnections::PerAddress)
        );
        assert_eq!(counter.try_open(ip("2001:db8:1:3::1")), Ok(()));
        counter.close(ip("2001:db8:1:2::77"));
        assert_eq!(counter.try_open(ip("2001:db8:1:2::5")), Ok(()));
        assert_eq!(client_group(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
