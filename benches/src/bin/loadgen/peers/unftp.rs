//! unFTP, the Rust FTP server (libunftp on tokio), built from crates.io
//! once into the cache and reused: only when `LOADGEN_UNFTP=1`, as the
//! build takes minutes. Its filesystem back end, its JSON user table, its
//! log at `warn` (no line per command or transfer).
//!
//! FTPS is left out: unFTP 0.16 offers TLS 1.2 only (its `main.rs` sets
//! `TlsFlags::V1_2`), and the comparison is over TLS 1.3.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{PASSIVE_PORTS, PASSWORD, USER, cache_dir, free_port, quiet};
use crate::certs::TlsFiles;

/// The version built: the flags below are its own.
const VERSION: &str = "0.16.0";

/// Where `cargo install --root` puts it.
fn install_root() -> PathBuf {
    cache_dir().join("unftp")
}

fn binary() -> PathBuf {
    install_root().join("bin/unftp")
}

/// Builds unFTP into the cache once (`LOADGEN_UNFTP=1` only); `false`
/// when it is not asked for or cannot be built.
pub(super) fn prepare() -> bool {
    if std::env::var_os("LOADGEN_UNFTP").is_none_or(|value| value != "1") {
        eprintln!("loadgen: unftp is left out (LOADGEN_UNFTP=1 builds it once, ~5 minutes)");
        return false;
    }
    if !binary().exists() {
        eprintln!("loadgen: building unftp {VERSION} (cargo install, once, ~5 minutes)");
        // Without the cloud back ends and authenticators (GCS, Azure,
        // REST): the filesystem and the JSON user table are built in or
        // kept, and the build takes half the time. Nice: the machine may
        // be shared. Its own temporary target directory, not ours.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let built = quiet(
            Command::new("nice")
                .arg(cargo)
                .args(["install", "unftp", "--version", VERSION, "--locked"])
                .args(["--no-default-features", "--features", "auth_jsonfile"])
                .arg("--root")
                .arg(install_root())
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET_DIR"),
        );
        if !built || !binary().exists() {
            eprintln!("loadgen: unftp could not be built here; its rows are left out");
            return false;
        }
    }
    true
}

/// unFTP listening on `port`, storing into `root`.
pub(super) fn command(root: &Path, port: u16, tls: Option<&TlsFiles>) -> Command {
    assert!(tls.is_none(), "unftp serves FTPS over TLS 1.2 only");
    let users = root.with_extension("users.json");
    std::fs::write(
        &users,
        format!(r#"[{{"username": "{USER}", "password": "{PASSWORD}"}}]"#),
    )
    .expect("unftp users");
    let mut command = Command::new(binary());
    // Its Prometheus endpoint cannot be turned off: on loopback, on a
    // port of its own.
    command
        .arg(format!("--bind-address=127.0.0.1:{port}"))
        .arg(format!("--bind-address-http=127.0.0.1:{}", free_port()))
        .arg(format!("--root-dir={}", root.display()))
        .arg("--auth-type=json")
        .arg(format!("--auth-json-path={}", users.display()))
        .arg(format!(
            "--passive-ports={}-{}",
            PASSIVE_PORTS.0, PASSIVE_PORTS.1
        ))
        .arg("--log-level=warn");
    command
}
