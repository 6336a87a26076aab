//! Address blocks (`10.0.0.0/8`, `2001:db8::/32`): which peers a relay
//! trusts to speak for others ([`RelayConfig::proxy_from`]).
//!
//! [`RelayConfig::proxy_from`]: crate::RelayConfig::proxy_from

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A block of IPv4 or IPv6 addresses: an address and a prefix length. A
/// bare address is the block of that address alone (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address with the bits past the prefix cleared.
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block of `prefix` leading bits of `address`; `None` when the
    /// prefix is longer than the address (33 for IPv4, 129 for IPv6). The
    /// bits past the prefix are ignored: `10.1.2.3/8` is `10.0.0.0/8`.
    pub fn new(address: IpAddr, prefix: u8) -> Option<Self> {
        let network = match address {
            IpAddr::V4(v4) if prefix <= 32 => {
                let host_bits = 32 - u32::from(prefix);
                let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let host_bits = 128 - u32::from(prefix);
                let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            _ => return None,
        };
        Some(Self { network, prefix })
    }

    /// The first address of the block.
    pub fn network(self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, how a dual-stack socket shows an IPv4 peer) is
    /// its IPv4 address.
    pub fn contains(self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(_), IpAddr::V4(v4)) => Self::new(IpAddr::V4(v4), self.prefix) == Some(self),
            (IpAddr::V6(_), IpAddr::V6(v6)) => Self::new(IpAddr::V6(v6), self.prefix) == Some(self),
            _ => false,
        }
    }
}

/// Why a text is not an address block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected an address block like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32, got {:?}",
            self.0
        )
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDRESS/PREFIX` or a bare `ADDRESS`; the prefix in decimal, at most
    /// 32 for IPv4 and 128 for IPv6.
    fn from_str(text: &str) -> Result<Self, CidrError> {
        let error = || CidrError(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => {
                // Digits only: `u8::from_str` would take `+8`.
                if prefix.is_empty()
                    || prefix.len() > 3
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(error());
                }
                (address, Some(prefix.parse::<u8>().map_err(|_| error())?))
            }
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| error())?;
        let prefix = prefix.unwrap_or(if address.is_ipv4() { 32 } else { 128 });
        Self::new(address, prefix).ok_or_else(error)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn blocks_parse_and_contain() {
        let block: Cidr = "10.1.2.3/8".parse().expect("block");
        assert_eq!(block.to_string(), "10.0.0.0/8");
        assert!(block.contains(ip("10.255.0.1")));
        assert!(block.contains(ip("::ffff:10.0.0.9")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(!block.contains(ip("::1")));
        let one: Cidr = "127.0.0.1".parse().expect("address");
        assert_eq!(one.prefix(), 32);
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().expect("v6");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("2001:db8::1")));
        let all6: Cidr = "::/0".parse().expect("all v6");
        assert!(all6.contains(ip("2001:db8::1")));
        assert_eq!("::1".parse::<Cidr>().expect("v6 host").prefix(), 128);
    }

    #[test]
    fn bad_blocks_are_refused() {
        for text in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0/8",
            "10.0.0.0/8/8",
            "example.org/8",
            "10.0.0.0 /8",
            "10.0.0.0/0008",
        ] {
            let error = text.parse::<Cidr>().expect_err(text);
            assert!(error.to_string().contains("address block"), "{error}");
        }
    }
}
