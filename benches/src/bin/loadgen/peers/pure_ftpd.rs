//! Pure-FTPd, unpacked from Debian's package (see `unpacked`). It forks a
//! process per session (two, with privilege separation), like vsftpd.
//!
//! The user is a virtual one of a PureDB file written for each start, so
//! that its home (where it lands) is the root of the run; it writes as the
//! local user, with the local user's password hash: the same login cost as
//! vsftpd and ProFTPD, which check /etc/shadow.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{USER, local_user, own_root, quiet, unpacked};
use crate::certs::TlsFiles;

/// Where the package is unpacked, once.
fn home() -> Option<PathBuf> {
    unpacked("pure-ftpd", &["pure-ftpd"], "usr/sbin/pure-ftpd")
}

/// Unpacks Pure-FTPd and makes its user if needed; `false` when it cannot
/// run here.
pub(super) fn prepare() -> bool {
    if home().is_none() {
        eprintln!("loadgen: pure-ftpd could not be unpacked here; its rows are left out");
        return false;
    }
    if !local_user() {
        eprintln!("loadgen: no local user {USER}; pure-ftpd is left out");
        return false;
    }
    true
}

/// Pure-FTPd listening on `port`, storing into `root`.
pub(super) fn command(root: &Path, port: u16, tls: Option<&TlsFiles>) -> Command {
    let home = home().expect("pure-ftpd is prepared");
    own_root(root);
    let database = user_database(&home, root);
    let mut command = Command::new(home.join("usr/sbin/pure-ftpd"));
    // -E no anonymous users, -H no reverse DNS, -f none: no syslog (no
    // line per session or transfer), -c/-C: no session limit in practice.
    // Passive ports: Pure-FTPd caps its sessions at half of its passive
    // range, so 61000-65535 would refuse the 10,000 idle sessions; it
    // steps to the next port when one is taken, so a range reaching into
    // the ephemeral one is safe (30000-65535: up to 17,767 sessions).
    command
        .arg("-S")
        .arg(format!("127.0.0.1,{port}"))
        .arg("-l")
        .arg(format!("puredb:{}", database.display()))
        .args(["-E", "-H", "-4", "-f", "none"])
        .args(["-c", "20000", "-C", "20000", "-p", "30000:65535"]);
    if let Some(tls) = tls {
        // -Y 1: TLS allowed, not required; TLS 1.3 is on by default.
        command.args(["-Y", "1", "-2"]).arg(format!(
            "{},{}",
            tls.cert.display(),
            tls.key.display()
        ));
    }
    command
}

/// A PureDB file with one user, [`USER`], whose home is `root`, writing as
/// the local user, with the local user's password hash; returns its path.
fn user_database(home: &Path, root: &Path) -> PathBuf {
    let shadow = std::fs::read_to_string("/etc/shadow").expect("read /etc/shadow");
    let hash = shadow
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{USER}:")))
        .and_then(|rest| rest.split(':').next())
        .expect("the local user's password hash");
    let id = |flag: &str| {
        let output = Command::new("id").args([flag, USER]).output().expect("id");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let text = root.with_extension("passwd");
    let database = root.with_extension("pdb");
    // user:hash:uid:gid:gecos:home, then the limits (none).
    std::fs::write(
        &text,
        format!(
            "{USER}:{hash}:{}:{}::{}::::::::::::\n",
            id("-u"),
            id("-g"),
            root.display()
        ),
    )
    .expect("pure-ftpd users");
    assert!(
        quiet(
            Command::new(home.join("usr/bin/pure-pw"))
                .arg("mkdb")
                .arg(&database)
                .arg("-f")
                .arg(&text)
        ),
        "pure-pw mkdb"
    );
    database
}
