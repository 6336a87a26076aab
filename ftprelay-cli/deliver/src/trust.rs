//! Which servers outgoing TLS trusts: the system's roots, plus private CAs
//! (`--trust-ca`), the same for mail, HTTP and S3.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The roots outgoing TLS connections are verified against.
#[derive(Debug, Clone)]
pub struct Trust {
    certificates: Arc<Vec<CertificateDer<'static>>>,
    roots: Arc<RootCertStore>,
}

/// Why the roots could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrustError(String);

impl Trust {
    /// The system's roots (as OpenSSL finds them: `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, then the distribution's bundle). A system without
    /// any is not an error: then only `--trust-ca` roots are trusted.
    pub fn system() -> Self {
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.errors.is_empty() {
            tracing::debug!(errors = ?loaded.errors, "some system roots could not be read");
        }
        Self::from_certificates(loaded.certs)
    }

    /// No roots at all but those added with [`Trust::with_ca_file`].
    pub fn empty() -> Self {
        Self::from_certificates(Vec::new())
    }

    fn from_certificates(certificates: Vec<CertificateDer<'static>>) -> Self {
        let mut roots = RootCertStore::empty();
        // A root the verifier cannot use (a malformed system file) is
        // skipped, as every TLS client does.
        let (_added, _ignored) = roots.add_parsable_certificates(certificates.iter().cloned());
        Self {
            certificates: Arc::new(certificates),
            roots: Arc::new(roots),
        }
    }

    /// These roots and every certificate of the PEM file at `path` (a
    /// private CA). A file that cannot be read or holds no certificate is
    /// an error naming it.
    pub fn with_ca_file(self, path: &Path) -> Result<Self, TrustError> {
        let named = |e: String| TrustError(format!("--trust-ca {}: {e}", path.display()));
        let added = CertificateDer::pem_file_iter(path)
            .map_err(|e| named(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| named(e.to_string()))?;
        if added.is_empty() {
            return Err(named("no PEM certificate in the file".to_owned()));
        }
        let mut certificates = (*self.certificates).clone();
        let mut roots = (*self.roots).clone();
        for certificate in &added {
            roots
                .add(certificate.clone())
                .map_err(|e| named(format!("not a usable CA certificate: {e}")))?;
        }
        certificates.extend(added);
        Ok(Self {
            certificates: Arc::new(certificates),
            roots: Arc::new(roots),
        })
    }

    /// The trusted certificates, DER (for clients that take them one by
    /// one).
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    /// A rustls client configuration verifying servers against these roots
    /// (ring, TLS 1.2 and 1.3).
    pub fn client_config(&self) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default versions"))
        .with_root_certificates(self.roots.clone())
        .with_no_client_auth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_ca_is_added_and_bad_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).expect("cert");
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.cert.pem()).expect("write");
        let trust = Trust::empty().with_ca_file(&good).expect("a CA file");
        assert_eq!(trust.certificates().len(), 1);

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        let error = Trust::empty()
            .with_ca_file(&empty)
            .expect_err("no certificate");
        assert!(error.to_string().contains("empty.pem"), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = Trust::empty().with_ca_file(&missing).expect_err("missing");
        assert!(error.to_string().contains("missing.pem"), "{error}");
    }
}
