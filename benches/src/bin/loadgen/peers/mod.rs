//! The FTP servers a user would pick instead of the relay, each set up as
//! its own documentation recommends for throughput: no debug logging, no
//! reverse DNS, no per-transfer log lines where they can be turned off, and
//! limits raised so that hundreds of busy and ten thousand idle sessions
//! from 127.0.0.1 are not refused. Each is installed when missing (Debian
//! packages, PyPI, or a cached `cargo install`), runs on loopback on an
//! OS-chosen port, and stores uploads in the directory it is given, where
//! the user lands after login.

mod proftpd;
mod pure_ftpd;
mod pyftpdlib;
mod unftp;
mod vsftpd;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::TlsFiles;

/// The user the load generator logs in as everywhere: a local user for
/// the servers that log local users in, an entry of their own user table
/// for the others.
pub(crate) const USER: &str = "ftpbench";
/// Its password.
pub(crate) const PASSWORD: &str = "ftpbench";

/// The first and last passive port of the servers that take a range:
/// above the kernel's ephemeral range (32768–60999), where thousands of
/// the clients' ports sit in TIME_WAIT during a load, so that a server
/// that tries a few random ports of its range does not give up.
const PASSIVE_PORTS: (u16, u16) = (61_000, 65_535);

/// ProFTPD's passive ports: below the ephemeral range and apart from the
/// others'. It binds without SO_REUSEADDR, and Pure-FTPd, run just before
/// it, leaves ports of 30000–65535 in TIME_WAIT ("425 EPSV: Address
/// already in use").
const PROFTPD_PASSIVE_PORTS: (u16, u16) = (20_000, 29_999);

/// How long a peer may take to accept connections after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A peer server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Peer {
    /// vsftpd (Debian package).
    Vsftpd,
    /// Pure-FTPd (Debian package, unpacked).
    PureFtpd,
    /// ProFTPD (Debian package, unpacked).
    Proftpd,
    /// pyftpdlib (PyPI).
    Pyftpdlib,
    /// unFTP (crates.io, built once when `LOADGEN_UNFTP=1`).
    Unftp,
}

impl Peer {
    /// Every peer, in the order of the tables.
    pub(crate) const ALL: [Peer; 5] = [
        Peer::Vsftpd,
        Peer::PureFtpd,
        Peer::Proftpd,
        Peer::Pyftpdlib,
        Peer::Unftp,
    ];

    /// Its name in the tables.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Peer::Vsftpd => "vsftpd",
            Peer::PureFtpd => "pure-ftpd",
            Peer::Proftpd => "proftpd",
            Peer::Pyftpdlib => "pyftpdlib",
            Peer::Unftp => "unftp",
        }
    }

    /// Installs what it needs when missing (apt-get / pip / the cached
    /// cargo install); false, with one line on stderr, when it cannot run
    /// here. Idempotent and quick when installed.
    pub(crate) fn prepare(self) -> bool {
        match self {
            Peer::Vsftpd => vsftpd::prepare(),
            Peer::PureFtpd => pure_ftpd::prepare(),
            Peer::Proftpd => proftpd::prepare(),
            Peer::Pyftpdlib => pyftpdlib::prepare(),
            Peer::Unftp => unftp::prepare(),
        }
    }

    /// Whether [`Peer::start`] can give it FTPS.
    pub(crate) fn supports_tls(self) -> bool {
        match self {
            Peer::Vsftpd | Peer::PureFtpd | Peer::Proftpd => true,
            Peer::Pyftpdlib => pyftpdlib::supports_tls(),
            // TLS 1.2 only (see unftp.rs).
            Peer::Unftp => false,
        }
    }

    /// Starts it on 127.0.0.1 (an OS-chosen free port), storing uploads
    /// into `root` (created; the user lands there after login), with
    /// explicit FTPS (AUTH TLS, PBSZ/PROT P, TLS 1.3 allowed, no TLS
    /// session reuse required on data connections) when `tls` is given.
    /// Waits (bounded) until it accepts connections; returns the child and
    /// the control address.
    pub(crate) fn start(self, root: &Path, tls: Option<&TlsFiles>) -> (Child, SocketAddr) {
        assert!(
            tls.is_none() || self.supports_tls(),
            "{} cannot serve FTPS here",
            self.label()
        );
        std::fs::create_dir_all(root).expect("peer root");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        // Its messages go to a file beside its root, shown if it fails.
        let log = root.with_extension("log");
        let mut command = match self {
            Peer::Vsftpd => vsftpd::command(root, addr.port(), tls),
            Peer::PureFtpd => pure_ftpd::command(root, addr.port(), tls),
            Peer::Proftpd => proftpd::command(root, addr.port(), tls),
            Peer::Pyftpdlib => pyftpdlib::command(root, addr.port(), tls),
            Peer::Unftp => unftp::command(root, addr.port(), tls),
        };
        let output = std::fs::File::create(&log).expect("peer log");
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("peer log"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.label()));
        (wait_listening(self, child, addr, &log), addr)
    }
}

/// A port that was free a moment ago: the peers take their port from
/// their configuration, not from the OS.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until `child` accepts connections on `addr`; panics, with its
/// log, when it exits or does not listen within [`START_TIMEOUT`].
fn wait_listening(peer: Peer, mut child: Child, addr: SocketAddr, log: &Path) -> Child {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return child;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            panic!(
                "{} exited ({status}) before listening:\n{said}",
                peer.label()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let said = std::fs::read_to_string(log).unwrap_or_default();
    panic!(
        "{} did not listen on {addr} within {START_TIMEOUT:?}:\n{said}",
        peer.label()
    );
}

/// Runs `command` without its output; whether it succeeded.
fn quiet(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether `program` is on the PATH.
fn on_path(program: &str) -> bool {
    quiet(Command::new("sh").args(["-c", &format!("command -v {program}")]))
}

/// `apt-get install` of `packages` (after an update), quietly.
fn apt_install(packages: &[&str]) -> bool {
    quiet(Command::new("apt-get").args(["update", "-qq"]));
    quiet(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages),
    )
}

/// Where installed peers are kept between runs.
fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ftprelay-bench")
}

/// The Debian `packages` unpacked (`apt-get download` + `dpkg -x`, no
/// install scripts) into `<cache>/<name>`, once, with the libraries they
/// depend on installed. Unpacked rather than installed: Debian's FTP
/// servers conflict with each other (only one may be installed), and their
/// install scripts would start a system-wide daemon on port 21. Returns the
/// directory, or `None` when it cannot be done here.
fn unpacked(name: &str, packages: &[&str], binary: &str) -> Option<PathBuf> {
    let dir = cache_dir().join(name);
    let ready = dir.join(".unpacked");
    if !ready.exists() {
        eprintln!("loadgen: unpacking {name} (apt-get download, dpkg -x) for the comparison");
        let debs = dir.with_extension("debs");
        let _ = std::fs::remove_dir_all(&debs);
        std::fs::create_dir_all(&debs).ok()?;
        let download = |debs: &Path| {
            quiet(
                Command::new("apt-get")
                    .arg("download")
                    .args(packages)
                    .current_dir(debs),
            )
        };
        if !download(&debs) {
            quiet(Command::new("apt-get").args(["update", "-qq"]));
            if !download(&debs) {
                return None;
            }
        }
        let mut libraries = Vec::new();
        for entry in std::fs::read_dir(&debs).ok()?.flatten() {
            let deb = entry.path();
            if !quiet(Command::new("dpkg").arg("-x").arg(&deb).arg(&dir)) {
                return None;
            }
            let depends = Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&deb)
                .arg("Depends")
                .output()
                .ok()?;
            libraries.extend(libraries_of(&String::from_utf8_lossy(&depends.stdout)));
        }
        let _ = std::fs::remove_dir_all(&debs);
        if !libraries.is_empty() {
            let libraries: Vec<&str> = libraries.iter().map(String::as_str).collect();
            if !quiet(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends"])
                    .args(&libraries),
            ) && !apt_install(&libraries)
            {
                return None;
            }
        }
        std::fs::write(&ready, "").ok()?;
    }
    // Runs only if its libraries are all there.
    let ldd = Command::new("ldd").arg(dir.join(binary)).output().ok()?;
    let missing = String::from_utf8_lossy(&ldd.stdout).contains("not found");
    (ldd.status.success() && !missing).then_some(dir)
}

/// The library packages of a Debian `Depends:` field (the first of each
/// set of alternatives, without versions): what an unpacked binary needs.
fn libraries_of(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .filter_map(|alternatives| {
            let first = alternatives.split('|').next()?.trim();
            let name = first.split([' ', '(', ':']).next()?.trim();
            name.starts_with("lib").then(|| name.to_owned())
        })
        .collect()
}

/// The local user of the servers that log local users in, with its
/// password; `false` when it cannot be made.
fn local_user() -> bool {
    if !quiet(Command::new("id").arg(USER)) {
        quiet(Command::new("useradd").args(["-M", "-s", "/bin/bash", USER]));
    }
    let mut chpasswd = Command::new("chpasswd");
    chpasswd.stdin(Stdio::piped());
    if let Ok(mut child) = chpasswd.spawn() {
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = std::io::Write::write_all(stdin, format!("{USER}:{PASSWORD}").as_bytes());
        }
        drop(child.stdin.take());
        let _ = child.wait();
    }
    // vsftpd enters the home directory before its local_root.
    let home = format!("/home/{USER}");
    let _ = std::fs::create_dir_all(&home);
    quiet(Command::new("chown").args([USER, home.as_str()]));
    quiet(Command::new("id").arg(USER))
}

/// Gives `root` to the local user, who writes the uploads.
fn own_root(root: &Path) {
    quiet(Command::new("chown").arg(USER).arg(root));
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::{PASSWORD, Peer, USER, libraries_of};

    /// A Python ftplib client: logs in, then uploads 1 MiB over EPSV and
    /// over PASV, over FTPS (PROT P, TLS 1.3, a fresh handshake on each
    /// data connection) when given the certificate; the server must have
    /// stored both files, whole, in ROOT.
    const CLIENT: &str = r#"import ftplib, os, socket, ssl, sys
port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cert = sys.argv[5] if len(sys.argv) > 5 else None
data = os.urandom(1 << 20)
if cert:
    context = ssl.create_default_context(cafile=cert)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    ftp = ftplib.FTP_TLS(context=context)
else:
    ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port, timeout=10)
if cert:
    ftp.auth()
ftp.login(user, password)
if cert:
    ftp.prot_p()
ftp.voidcmd("TYPE I")
for name, family in (("epsv.bin", socket.AF_INET6), ("pasv.bin", socket.AF_INET)):
    ftp.af = family  # ftplib sends EPSV for AF_INET6, PASV for AF_INET
    conn, _ = ftplib.FTP.ntransfercmd(ftp, "STOR " + name)
    if cert:
        conn = context.wrap_socket(conn, server_hostname="127.0.0.1")
        assert conn.version() == "TLSv1.3", conn.version()
    conn.sendall(data)
    if cert:
        try:
            conn.unwrap()
        except ssl.SSLEOFError:
            pass  # closed without its close_notify, after the whole file
    conn.close()
    ftp.voidresp()
    with open(os.path.join(root, name), "rb") as stored:
        assert stored.read() == data, name
ftp.quit()
"#;

    /// Every peer that can run here takes a plain upload, and an FTPS one
    /// where it supports TLS. Installs what is missing (apt-get, pip):
    /// run by hand, `cargo test -p ftprelay-benches --bin loadgen --
    /// --ignored`.
    #[test]
    #[ignore = "installs the peers"]
    fn every_prepared_peer_stores_uploads_from_ftplib() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let tls = crate::certs::generate(&dir.path().join("tls"));
        let script = dir.path().join("client.py");
        std::fs::write(&script, CLIENT).expect("client script");
        let mut tried = 0;
        for peer in Peer::ALL.into_iter().filter(|peer| peer.prepare()) {
            let modes = if peer.supports_tls() {
                vec![None, Some(&tls)]
            } else {
                vec![None]
            };
            for mode in modes {
                let root = dir.path().join(format!(
                    "{}-{}",
                    peer.label(),
                    if mode.is_some() { "tls" } else { "plain" }
                ));
                let (mut child, addr) = peer.start(&root, mode);
                let mut client = Command::new("python3");
                client
                    .arg(&script)
                    .arg(addr.port().to_string())
                    .arg(&root)
                    .args([USER, PASSWORD]);
                if let Some(tls) = mode {
                    client.arg(&tls.cert);
                }
                let status = client.status().expect("python3");
                let _ = child.kill();
                let _ = child.wait();
                let what = format!(
                    "{} over {}",
                    peer.label(),
                    if mode.is_some() { "FTPS" } else { "FTP" }
                );
                assert!(status.success(), "{what}: the uploads failed");
                eprintln!("{what}: two uploads of 1 MiB stored");
                tried += 1;
            }
        }
        assert!(tried > 0, "no peer could run here");
    }

    #[test]
    fn library_dependencies_are_read_from_a_depends_field() {
        let depends = "adduser, libpam-runtime, libacl1 (>= 2.2.23), libc6 (>= 2.34), \
                       libcap2 (>= 1:2.10) | libcap2-bin, debconf | debconf-2.0, ucf";
        assert_eq!(
            libraries_of(depends),
            ["libpam-runtime", "libacl1", "libc6", "libcap2"]
        );
    }
}
