//! The certificate of the FTPS runs: self-signed, for 127.0.0.1 and
//! localhost, in PEM files every server reads (the relay, vsftpd,
//! Pure-FTPd, ProFTPD, pyftpdlib).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A certificate and its private key, as PEM files.
pub(crate) struct TlsFiles {
    /// The certificate (mode 0644).
    pub(crate) cert: PathBuf,
    /// Its ECDSA P-256 private key, PKCS#8 (mode 0600: every server reads
    /// it as root, before it drops privileges).
    pub(crate) key: PathBuf,
}

/// Generates a self-signed certificate for `127.0.0.1` and `localhost`
/// into `dir` (created), as `cert.pem` and `key.pem`.
pub(crate) fn generate(dir: &Path) -> TlsFiles {
    std::fs::create_dir_all(dir).expect("certificate dir");
    // ECDSA: what vsftpd, Pure-FTPd, ProFTPD (TLSECCertificateFile) and
    // rustls all take, and the cheapest handshake.
    let key_pair =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key pair");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate parameters");
    let cert = params.self_signed(&key_pair).expect("a certificate");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    write(&files.cert, &cert.pem(), 0o644);
    write(&files.key, &key_pair.serialize_pem(), 0o600);
    files
}

fn write(path: &Path, pem: &str, mode: u32) {
    std::fs::write(path, pem).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", path.display()));
}
