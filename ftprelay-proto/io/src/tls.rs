//! The relay's TLS identity: certificate and key, reloadable while the
//! relay runs (new connections get the new one; sessions keep theirs).

use std::io;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS server configuration for FTPS, explicit (`AUTH TLS`) and implicit.
/// Cheap to clone: clones share the configuration and see its reloads.
#[derive(Clone)]
pub struct Tls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl Tls {
    /// The certificate chain and private key of these PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Self> {
        Ok(Self::from_config(Arc::new(load(cert, key)?)))
    }

    /// A rustls configuration of your own.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self {
            current: Arc::new(RwLock::new(config)),
        }
    }

    /// Replaces the certificate and key (on SIGHUP, say). On an error the
    /// old ones stay.
    pub fn reload_pem_files(&self, cert: &Path, key: &Path) -> io::Result<()> {
        let config = Arc::new(load(cert, key)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The configuration new control connections get.
    fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The TLS configurations of one control connection and its data
/// connections, fixed when its TLS starts (a reload changes the next
/// session's, not this one's).
pub(crate) struct SessionTls {
    /// For the control connection.
    pub(crate) control: Arc<ServerConfig>,
    /// For its data connections: the same identity and session store, but
    /// no TLS 1.3 session tickets. A ticket is sent after the handshake,
    /// when a client may already have sent its file and closed; the
    /// arriving ticket then resets the connection, and the reset discards
    /// the end of the upload. Tickets come from the control connection.
    pub(crate) data: Arc<ServerConfig>,
    /// Data connections must resume this session's TLS session.
    pub(crate) require_resumption: bool,
}

impl SessionTls {
    /// The configurations of a new control connection. With
    /// `require_resumption`, it gets a ticket key and session cache of its
    /// own, shared with its data connections only: then only its own
    /// sessions can be resumed on them.
    pub(crate) fn new(tls: &Tls, require_resumption: bool) -> Result<Self, rustls::Error> {
        let mut control = tls.current();
        if require_resumption {
            let mut own = (*control).clone();
            // Stateless tickets: a client may resume one session on every
            // data connection (a stateful TLS 1.3 ticket is good for one).
            own.ticketer = rustls::crypto::ring::Ticketer::new()?;
            // TLS 1.2 clients without tickets resume by session id; a
            // session makes few entries.
            own.session_storage =
                rustls::server::ServerSessionMemoryCache::new(SESSIONS_PER_CONTROL);
            control = Arc::new(own);
        }
        let mut data = (*control).clone();
        data.send_tls13_tickets = 0;
        Ok(Self {
            control,
            data: Arc::new(data),
            require_resumption,
        })
    }
}

/// TLS sessions kept per control connection when data connections must
/// resume it: its own, and a few renegotiated by clients that start anew.
const SESSIONS_PER_CONTROL: usize = 8;

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// A server configuration with TLS 1.2 and 1.3 and rustls's session cache:
/// a data connection may resume the control connection's session, and need
/// not (embedded clients cannot).
fn load(cert: &Path, key: &Path) -> io::Result<ServerConfig> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} {}: {e}", path.display()),
        )
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("cannot read the certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("cannot read the certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad("no certificate in", cert, &"the file holds none"));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad("cannot read the key", key, &e))?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("cannot use", cert, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad("the key does not fit the certificate", cert, &e))
}
