//! vsftpd, the reference: installed from Debian when missing, run as a
//! local user on loopback. It forks a process (two, with privilege
//! separation) per session.

use std::path::Path;
use std::process::Command;

use super::{PASSIVE_PORTS, apt_install, local_user, on_path, own_root};
use crate::certs::TlsFiles;

/// Installs vsftpd and its user if needed; `false` when it cannot run here.
pub(super) fn prepare() -> bool {
    if !on_path("vsftpd") {
        eprintln!("loadgen: installing vsftpd (apt-get) for the comparison");
        apt_install(&["vsftpd"]);
    }
    if !on_path("vsftpd") {
        eprintln!("loadgen: vsftpd is not available; its rows are left out");
        return false;
    }
    if !local_user() {
        eprintln!("loadgen: no local user {}; vsftpd is left out", super::USER);
        return false;
    }
    let _ = std::fs::create_dir_all("/var/run/vsftpd/empty");
    true
}

/// vsftpd listening on `port`, storing into `root`.
pub(super) fn command(root: &Path, port: u16, tls: Option<&TlsFiles>) -> Command {
    own_root(root);
    let config = root.with_extension("conf");
    // No seccomp sandbox: it refuses some of the calls a loaded session
    // makes in a VM. No transfer log, no session limits. Passive ports:
    // vsftpd binds a random port of its range and gives up ("500 OOPS:
    // vsf_sysutil_bind") after a few tries, hence a range above the
    // ephemeral one (see PASSIVE_PORTS).
    let mut settings = format!(
        "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
         anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=077\n\
         local_root={}\nchroot_local_user=NO\npasv_enable=YES\npasv_min_port={}\npasv_max_port={}\n\
         seccomp_sandbox=NO\npam_service_name=vsftpd\nsecure_chroot_dir=/var/run/vsftpd/empty\n\
         max_clients=0\nmax_per_ip=0\nxferlog_enable=NO\n",
        root.display(),
        PASSIVE_PORTS.0,
        PASSIVE_PORTS.1,
    );
    if let Some(tls) = tls {
        // Explicit FTPS allowed, not required (the client asks for it);
        // no session reuse required on data connections; TLS 1.3 is never
        // disabled by vsftpd; HIGH ciphers for TLS 1.2 with an ECDSA key.
        settings.push_str(&format!(
            "ssl_enable=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n\
             require_ssl_reuse=NO\nforce_local_logins_ssl=NO\nforce_local_data_ssl=NO\n\
             ssl_ciphers=HIGH\nssl_request_cert=NO\n",
            tls.cert.display(),
            tls.key.display(),
        ));
    }
    std::fs::write(&config, settings).expect("vsftpd config");
    let mut command = Command::new("vsftpd");
    command.arg(&config);
    command
}
