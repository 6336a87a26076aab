//! ProFTPD, unpacked from Debian's packages (see `unpacked`), with mod_tls
//! from proftpd-mod-crypto. It forks a process per session, like vsftpd;
//! the local user logs in against /etc/shadow (mod_auth_unix, no PAM).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{PROFTPD_PASSIVE_PORTS, USER, local_user, own_root, unpacked};
use crate::certs::TlsFiles;

/// Where the packages are unpacked, once.
fn home() -> Option<PathBuf> {
    unpacked(
        "proftpd",
        &["proftpd-core", "proftpd-mod-crypto"],
        "usr/sbin/proftpd",
    )
}

/// Unpacks ProFTPD and makes its user if needed; `false` when it cannot
/// run here.
pub(super) fn prepare() -> bool {
    if home().is_none() {
        eprintln!("loadgen: proftpd could not be unpacked here; its rows are left out");
        return false;
    }
    if !local_user() {
        eprintln!("loadgen: no local user {USER}; proftpd is left out");
        return false;
    }
    true
}

/// ProFTPD listening on `port`, storing into `root`, in the foreground.
pub(super) fn command(root: &Path, port: u16, tls: Option<&TlsFiles>) -> Command {
    let home = home().expect("proftpd is prepared");
    own_root(root);
    let config = root.with_extension("conf");
    // ProFTPD refuses a scoreboard in a world-writable directory (the
    // spool is one).
    let run = root.with_extension("run");
    std::fs::create_dir_all(&run).expect("proftpd run dir");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // No reverse DNS, no login delay (mod_delay), no transfer, wtmp or
    // system log, no session limits, its largest listen backlog (for 512
    // sessions connecting at once); the user lands in `root` (DefaultChdir).
    let mut settings = format!(
        "ServerType standalone\nServerName \"proftpd\"\nPort {port}\nDefaultAddress 127.0.0.1\n\
         SocketBindTight on\nUseIPv6 off\nUser nobody\nGroup nogroup\nUmask 077\n\
         AllowOverwrite on\nPidFile {pid}\nScoreboardFile {scoreboard}\n\
         DelayEngine off\nAuthPAM off\nAuthOrder mod_auth_unix.c\nUseFtpUsers off\n\
         RequireValidShell off\nDefaultChdir {root}\nUseReverseDNS off\n\
         MaxInstances 20000\nMaxClients none\nMaxClientsPerHost none\n\
         MaxConnectionsPerHost none\nTCPBacklog 255\nPassivePorts {first} {last}\n\
         TransferLog none\nWtmpLog off\nSystemLog none\nDebugLevel 0\n",
        pid = run.join("proftpd.pid").display(),
        scoreboard = run.join("proftpd.scoreboard").display(),
        root = root.display(),
        first = PROFTPD_PASSIVE_PORTS.0,
        last = PROFTPD_PASSIVE_PORTS.1,
    );
    if let Some(tls) = tls {
        // Explicit FTPS allowed, not required; TLS 1.3 allowed; no session
        // reuse required on data connections. The certificate is ECDSA.
        settings.push_str(&format!(
            "ModulePath {}\nLoadModule mod_tls.c\nTLSEngine on\nTLSProtocol TLSv1.2 TLSv1.3\n\
             TLSECCertificateFile {}\nTLSECCertificateKeyFile {}\n\
             TLSOptions NoSessionReuseRequired\nTLSVerifyClient off\nTLSRequired off\n",
            home.join("usr/lib/proftpd").display(),
            tls.cert.display(),
            tls.key.display(),
        ));
    }
    std::fs::write(&config, settings).expect("proftpd config");
    let mut command = Command::new(home.join("usr/sbin/proftpd"));
    // -n: in the foreground, -q: no startup messages.
    command.arg("-n").arg("-q").arg("-c").arg(&config);
    command
}
