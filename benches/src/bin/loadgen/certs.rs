//! The certificate of the FTPS scenarios: self-signed for `127.0.0.1`
//! and `localhost`, in PEM files every server can read.

use std::path::{Path, PathBuf};

/// A certificate and its key, in PEM files.
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// Generates the certificate into `dir` (created).
pub(crate) fn generate(dir: &Path) -> TlsFiles {
    std::fs::create_dir_all(dir).expect("tls dir");
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, generated.cert.pem()).expect("write the certificate");
    std::fs::write(&files.key, generated.key_pair.serialize_pem()).expect("write the key");
    files
}
