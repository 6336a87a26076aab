//! What a whole relay is configured with, beyond each session's [`Config`]:
//! shared by every adapter.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cidr::Cidr;
use crate::config::Config;

/// The passive port range: listeners for PASV/EPSV take a port from it.
///
/// The ports are shared by the sessions: each port has one listener while
/// any session waits on it, and any number of sessions from different
/// client addresses wait on it at once; an incoming data connection goes to
/// the session waiting on that port for its address. So a few ports serve
/// any number of sessions, and a client gets `425` only when its address
/// waits on every port already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassivePorts {
    first: u16,
    last: u16,
}

impl PassivePorts {
    /// The ports `first..=last`; `None` when the range is empty or holds
    /// port 0.
    pub fn new(first: u16, last: u16) -> Option<Self> {
        (first != 0 && first <= last).then_some(Self { first, last })
    }

    /// The first port.
    pub fn first(self) -> u16 {
        self.first
    }

    /// The last port.
    pub fn last(self) -> u16 {
        self.last
    }

    /// Every port of the range once, starting at a place that moves with
    /// `turn`, so that consecutive listeners spread over the range instead
    /// of all racing for its first port. Try them in order: binding is the
    /// only race-free test of whether a port is free.
    pub fn candidates(self, turn: u64) -> impl Iterator<Item = u16> + Clone {
        let len = u64::from(self.last - self.first) + 1;
        let start = turn % len;
        (0..len).map(move |i| {
            let offset = (start + i) % len;
            // `offset < len <= 65535`, and `first + offset <= last`.
            self.first + offset as u16
        })
    }
}

/// Configuration of a relay: where it listens, where it spools, how many
/// clients it serves, and the [`Config`] of each session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The control listeners. Default: `127.0.0.1:2121`, reachable from
    /// this machine only until you decide otherwise.
    pub listen: Vec<SocketAddr>,
    /// Listeners for implicit FTPS (the port 990 style: TLS from the first
    /// byte). They need the adapter's TLS identity. None by default.
    pub implicit_tls_listen: Vec<SocketAddr>,
    /// Where passive listeners take their ports, shared by the sessions
    /// (see [`PassivePorts`]). `None` gives each PASV/EPSV a listener of its
    /// own on any free port the operating system chooses (fine without a
    /// firewall or NAT).
    pub passive_ports: Option<PassivePorts>,
    /// The spool directory. `None` creates a fresh private directory under
    /// the system's temporary directory, removed when the relay stops.
    pub spool_dir: Option<PathBuf>,
    /// Control connections served at once; more are answered `421`. A
    /// connection that uploads holds four file descriptors (the control and
    /// data sockets, a duplicate to cancel the copy, the spool file): with
    /// 512, raise the limit of open files (`ulimit -n`) to 2048 or more.
    /// An upload is also one thread while it is received.
    pub max_connections: usize,
    /// Control connections from one address at once. 32: an NVR uploading
    /// many channels at once still fits, one client cannot take the relay.
    pub max_connections_per_ip: usize,
    /// Failed logins from one address, across its sessions, before it is
    /// locked out (answered `421` at its next login). Ten: a user who
    /// mistypes gets there only by trying hard; a guesser is slowed to a
    /// crawl.
    pub max_failed_logins_per_address: u32,
    /// How long a locked-out address stays locked out. Ten minutes.
    pub address_lockout: Duration,
    /// How long a shutdown waits for uploads in flight to be received,
    /// processed and answered. 90 seconds covers the default data and
    /// processing timeouts.
    pub shutdown_grace: Duration,
    /// Refuse (`522`) a protected data connection that does not resume the
    /// TLS session of its own control connection (vsftpd's
    /// `require_ssl_reuse`): then a stolen data port is useless without
    /// that session's keys. Off by default: many clients (embedded ones,
    /// some libraries) never resume, and would fail every upload.
    pub tls_require_session_reuse: bool,
    /// The most bytes per second all uploads together may arrive at
    /// (pyftpdlib's throttled handler, for the whole relay); `None`: no
    /// limit, the default.
    pub max_total_upload_rate: Option<u64>,
    /// The proxies (load balancers) trusted to speak for their clients
    /// with a PROXY protocol header (v1 or v2, [`crate::proxy`]). A
    /// connection from one of them, control or passive data, must start
    /// with a header, and the client it names is the peer for everything
    /// (logs, limits, the login lock-out, the PORT and data-peer checks); a
    /// connection from any other peer is served as it is, with its own
    /// address, and refused if it sends a header. Empty (the default): the
    /// PROXY protocol is off and no header is looked for.
    pub proxy_from: Vec<Cidr>,
    /// The configuration of every session.
    pub session: Config,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2121))],
            implicit_tls_listen: Vec::new(),
            passive_ports: None,
            spool_dir: None,
            max_connections: 512,
            max_connections_per_ip: 32,
            max_failed_logins_per_address: 10,
            address_lockout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(90),
            tls_require_session_reuse: false,
            max_total_upload_rate: None,
            proxy_from: Vec::new(),
            session: Config::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_the_range_once_from_a_moving_start() {
        let ports = PassivePorts::new(50_000, 50_003).expect("range");
        let first: Vec<u16> = ports.candidates(0).collect();
        assert_eq!(first, vec![50_000, 50_001, 50_002, 50_003]);
        let sixth: Vec<u16> = ports.candidates(5).collect();
        assert_eq!(sixth, vec![50_001, 50_002, 50_003, 50_000]);
        let whole = PassivePorts::new(1, u16::MAX).expect("range");
        assert_eq!(whole.candidates(u64::MAX).count(), 65_535);
        assert_eq!(PassivePorts::new(0, 10), None);
        assert_eq!(PassivePorts::new(10, 9), None);
    }
}
