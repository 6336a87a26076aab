//! What the sessions of one relay share.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use proto::{Authenticator, RelayConfig};

use crate::limits::{ConnectionCounter, TooManyConnections};
use crate::observe::{NoObserver, Observation, Observer};
use crate::throttle::LoginThrottle;

use crate::runtime::Runtime;
use crate::shared_ports::SharedPorts;
use crate::spool::Spool;
use crate::tls::Tls;

/// Everything the sessions of one relay share.
pub(crate) struct Shared<A: Authenticator, R: Runtime> {
    pub(crate) authenticator: Arc<A>,
    pub(crate) config: RelayConfig,
    pub(crate) session_config: Arc<proto::Config>,
    pub(crate) spool: Spool,
    pub(crate) runtime: R,
    /// Moves the start of the passive port search from listener to listener.
    pub(crate) passive_turn: AtomicU64,
    /// The passive port range's listeners, shared by the sessions waiting
    /// on them (unused without a range).
    pub(crate) passive: Arc<SharedPorts<R::Stream>>,
    /// The last session's number, for the log: `session{id=N …}` ties a
    /// session's lines together (an address is not enough behind NAT).
    pub(crate) session_ids: AtomicU64,
    connections: Mutex<ConnectionCounter>,
    /// Failed logins per address, across sessions.
    pub(crate) logins: Mutex<LoginThrottle>,
    /// The TLS identity, when FTPS is on.
    pub(crate) tls: Option<Tls>,
    /// Each user's uploads of the last moments, for the user's other
    /// sessions (devices profile).
    pub(crate) recent: Arc<proto::RecentUploads>,
    /// `--max-total-upload-rate`: the bucket every upload's data thread
    /// draws from.
    pub(crate) total_upload_rate: Option<Arc<Mutex<proto::TokenBucket>>>,
    /// Told what happens ([`NoObserver`] unless the application gave one).
    pub(crate) observer: Arc<dyn Observer>,
}

/// Recent uploads remembered across all sessions at most.
const MAX_RECENT_UPLOADS: usize = 10_000;

impl<A: Authenticator, R: Runtime> Shared<A, R> {
    pub(crate) fn new(
        config: RelayConfig,
        authenticator: A,
        spool: Spool,
        runtime: R,
        tls: Option<Tls>,
    ) -> Self {
        let passive = Arc::new(SharedPorts::new(!config.session.data_peer_must_match));
        Self {
            tls,
            authenticator: Arc::new(authenticator),
            session_config: Arc::new(config.session.clone()),
            recent: Arc::new(proto::RecentUploads::new(
                config.session.recent_upload_window,
                MAX_RECENT_UPLOADS,
            )),
            connections: Mutex::new(ConnectionCounter::new(
                config.max_connections,
                config.max_connections_per_ip,
            )),
            logins: Mutex::new(LoginThrottle::new(
                config.max_failed_logins_per_address,
                config.address_lockout,
            )),
            total_upload_rate: config
                .max_total_upload_rate
                .map(|rate| Arc::new(Mutex::new(proto::TokenBucket::new(rate)))),
            config,
            spool,
            runtime,
            passive_turn: AtomicU64::new(0),
            passive,
            session_ids: AtomicU64::new(0),
            observer: Arc::new(NoObserver),
        }
    }

    /// Counts a new connection from `ip` for as long as the guard lives, or
    /// says why it is refused (answer with its reply, then close).
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<ConnectionGuard<A, R>, TooManyConnections> {
        let opened = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_open(ip);
        if let Err(refusal) = opened {
            self.observe(&Observation::ConnectionRefused(refusal));
            return Err(refusal);
        }
        self.observe(&Observation::SessionOpened);
        Ok(ConnectionGuard {
            shared: self.clone(),
            ip,
        })
    }

    /// Tells the observer.
    pub(crate) fn observe(&self, observation: &Observation<'_>) {
        self.observer.observe(observation);
    }
}

/// Counts a connection for as long as it lives.
pub(crate) struct ConnectionGuard<A: Authenticator, R: Runtime> {
    shared: Arc<Shared<A, R>>,
    ip: IpAddr,
}

impl<A: Authenticator, R: Runtime> Drop for ConnectionGuard<A, R> {
    fn drop(&mut self) {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close(self.ip);
        // Here, not at the end of the session's future: a session that
        // panicked or was cancelled is closed too.
        self.shared.observe(&Observation::SessionClosed);
    }
}
