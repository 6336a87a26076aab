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

    /// The configuration new connections get.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

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
