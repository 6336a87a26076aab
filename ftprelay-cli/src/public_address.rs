//! `--public-address`: an IPv4 address, a host name (resolved at start,
//! then every minute, for dynamic DNS), or `CIDR=IP` for the clients of a
//! network (repeatable).

use std::net::{Ipv4Addr, ToSocketAddrs as _};
use std::time::Duration;

use ftprelay_tokio::proto::{Cidr, PublicAddress};

use crate::error::CliError;

/// How often a host name is resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(60);

/// The public address of `values` (flags, or the config file's); a host
/// name among them is resolved now, and again every minute on a thread of
/// its own.
pub(crate) fn parse(values: &[String]) -> Result<PublicAddress, CliError> {
    let mut default = None;
    let mut host = None;
    let mut overrides = Vec::new();
    for value in values {
        let value = value.trim();
        let bad = |why: &str| {
            CliError::Usage(format!(
                "--public-address {value}: {why} (an IPv4 address, a host name, or CIDR=IPv4)"
            ))
        };
        if let Some((network, address)) = value.split_once('=') {
            let network: Cidr = network.trim().parse().map_err(|e| bad(&format!("{e}")))?;
            let address: Ipv4Addr = address
                .trim()
                .parse()
                .map_err(|_| bad("not an IPv4 address after ="))?;
            if address.is_unspecified() {
                return Err(bad("0.0.0.0 is no address a client can reach"));
            }
            overrides.push((network, address));
            continue;
        }
        if value.is_empty() {
            return Err(bad("empty"));
        }
        if default.is_some() {
            return Err(bad("a second address for every client"));
        }
        match value.parse::<Ipv4Addr>() {
            Ok(address) if address.is_unspecified() => {
                return Err(bad("0.0.0.0 is no address a client can reach"));
            }
            Ok(address) => default = Some(address),
            Err(_) if value.parse::<std::net::IpAddr>().is_ok() => {
                return Err(bad("PASV replies carry IPv4 only"));
            }
            Err(_) => {
                let resolved = resolve(value).map_err(|why| bad(&why))?;
                default = Some(resolved);
                host = Some(value.to_owned());
            }
        }
    }
    let public = overrides
        .into_iter()
        .fold(PublicAddress::new(default), |public, (network, address)| {
            public.with_override(network, address)
        });
    if let Some(host) = host {
        keep_resolving(host, public.clone())?;
    }
    Ok(public)
}

/// The first IPv4 address of `host`.
fn resolve(host: &str) -> Result<Ipv4Addr, String> {
    let addresses = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve it: {e}"))?;
    addresses
        .filter_map(|addr| match addr.ip() {
            std::net::IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4),
            _ => None,
        })
        .next()
        .ok_or_else(|| "it has no IPv4 address".to_owned())
}

/// Resolves `host` every minute and advertises what it says; a failed
/// lookup keeps the last address.
fn keep_resolving(host: String, public: PublicAddress) -> Result<(), CliError> {
    std::thread::Builder::new()
        .name("ftprelay-resolve".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(RESOLVE_EVERY);
                match resolve(&host) {
                    Ok(address) if public.default_address() != Some(address) => {
                        tracing::info!(%host, %address, "the public address changed");
                        public.set(Some(address));
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%host, error, "cannot resolve the public address; keeping the last one");
                    }
                }
            }
        })
        .map(drop)
        .map_err(|e| CliError::Runtime(format!("cannot start the resolver: {e}")))
}
