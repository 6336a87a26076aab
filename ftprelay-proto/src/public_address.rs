//! The IPv4 address a `227` reply advertises: the relay's own local
//! address, unless the network has another for this client. pyftpdlib
//! calls it a masquerade map and SFTPGo overrides: LAN clients get the LAN
//! address, the rest the public one. The address may change while the
//! relay runs (a host name re-resolved for dynamic DNS): the application
//! sets it, every session reads it, and nothing here reads a clock or a
//! resolver.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::Cidr;

/// What `227` replies advertise. Cloning shares the address that
/// [`PublicAddress::set`] changes.
#[derive(Debug, Clone, Default)]
pub struct PublicAddress {
    /// The address for every client no override matches; 0: none (the
    /// local address is advertised).
    default: Arc<AtomicU32>,
    /// Clients in these networks get these addresses, the first match
    /// winning.
    overrides: Vec<(Cidr, Ipv4Addr)>,
}

impl PublicAddress {
    /// Advertises `address` to every client (`None`: the local address;
    /// 0.0.0.0 means none too, which is why the application refuses it).
    pub fn new(address: Option<Ipv4Addr>) -> Self {
        let public = Self::default();
        public.set(address);
        public
    }

    /// Clients in `network` get `address` instead.
    pub fn with_override(mut self, network: Cidr, address: Ipv4Addr) -> Self {
        self.overrides.push((network, address));
        self
    }

    /// Changes the address for every client no override matches, in every
    /// session from its next `PASV` on.
    pub fn set(&self, address: Option<Ipv4Addr>) {
        let bits = address.map_or(0, u32::from);
        self.default.store(bits, Ordering::Relaxed);
    }

    /// The address for every client no override matches.
    pub fn default_address(&self) -> Option<Ipv4Addr> {
        match self.default.load(Ordering::Relaxed) {
            0 => None,
            bits => Some(Ipv4Addr::from(bits)),
        }
    }

    /// The address advertised to `client`, if not the local one.
    pub fn for_client(&self, client: IpAddr) -> Option<Ipv4Addr> {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        self.overrides
            .iter()
            .find(|(network, _)| network.contains(client))
            .map(|&(_, address)| address)
            .or_else(|| self.default_address())
    }
}

/// Equal when they advertise the same now.
impl PartialEq for PublicAddress {
    fn eq(&self, other: &Self) -> bool {
        self.default_address() == other.default_address() && self.overrides == other.overrides
    }
}

impl Eq for PublicAddress {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_network_wins_then_the_default_then_none() {
        let lan: Cidr = "192.168.0.0/16".parse().expect("cidr");
        let office: Cidr = "192.168.7.0/24".parse().expect("cidr");
        let public = PublicAddress::new(Some("203.0.113.7".parse().expect("ip")))
            .with_override(office, "192.168.7.1".parse().expect("ip"))
            .with_override(lan, "192.168.0.1".parse().expect("ip"));
        let at = |ip: &str| public.for_client(ip.parse().expect("ip"));
        assert_eq!(at("192.168.7.20"), Some("192.168.7.1".parse().expect("ip")));
        assert_eq!(at("192.168.9.20"), Some("192.168.0.1".parse().expect("ip")));
        assert_eq!(
            at("::ffff:192.168.9.20"),
            Some("192.168.0.1".parse().expect("ip"))
        );
        assert_eq!(at("198.51.100.1"), Some("203.0.113.7".parse().expect("ip")));
        // A re-resolved name: every clone sees it.
        let shared = public.clone();
        shared.set(Some("203.0.113.8".parse().expect("ip")));
        assert_eq!(at("198.51.100.1"), Some("203.0.113.8".parse().expect("ip")));
        shared.set(None);
        assert_eq!(at("198.51.100.1"), None);
        assert_eq!(
            at("192.168.9.20"),
            Some("192.168.0.1".parse().expect("ip")),
            "the overrides remain"
        );
    }
}
