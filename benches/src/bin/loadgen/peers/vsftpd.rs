//! vsftpd, the reference: installed from Debian when missing, run as a
//! local user on loopback, storing into tmpfs.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The local user the load generator logs in as everywhere.
pub(crate) const USER: &str = "ftpbench";
pub(crate) const PASSWORD: &str = "ftpbench";

fn quiet(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Installs vsftpd and its user if needed; `false` when it cannot run here.
pub(crate) fn prepare() -> bool {
    if !quiet(Command::new("sh").args(["-c", "command -v vsftpd"])) {
        eprintln!("loadgen: installing vsftpd (apt-get) for the comparison");
        quiet(Command::new("apt-get").args(["update", "-qq"]));
        quiet(Command::new("apt-get").args(["install", "-y", "-qq", "vsftpd"]));
    }
    if !quiet(Command::new("sh").args(["-c", "command -v vsftpd"])) {
        eprintln!("loadgen: vsftpd is not available; its rows are left out");
        return false;
    }
    if !quiet(Command::new("id").arg(USER)) {
        quiet(Command::new("useradd").args(["-M", "-s", "/bin/bash", USER]));
    }
    let password = format!("{USER}:{PASSWORD}");
    let mut chpasswd = Command::new("chpasswd");
    chpasswd.stdin(Stdio::piped());
    if let Ok(mut child) = chpasswd.spawn() {
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = std::io::Write::write_all(stdin, password.as_bytes());
        }
        drop(child.stdin.take());
        let _ = child.wait();
    }
    let _ = std::fs::create_dir_all("/var/run/vsftpd/empty");
    // vsftpd enters the home directory before its local_root.
    let home = format!("/home/{USER}");
    let _ = std::fs::create_dir_all(&home);
    quiet(Command::new("chown").args([USER, home.as_str()]));
    true
}

/// Starts vsftpd storing into `root`; returns it with its address.
pub(crate) fn start(root: &Path) -> (Child, SocketAddr) {
    std::fs::create_dir_all(root).expect("vsftpd root");
    quiet(Command::new("chown").args([USER]).arg(root));
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = root.with_extension("conf");
    // Passive ports above the kernel's ephemeral range: vsftpd binds a
    // random port and gives up ("500 OOPS: vsf_sysutil_bind") after a few
    // tries, and thousands of the clients' ports sit in TIME_WAIT there.
    std::fs::write(
        &config,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=077\n\
             local_root={}\nchroot_local_user=NO\npasv_enable=YES\npasv_min_port=61000\npasv_max_port=65535\nseccomp_sandbox=NO\n\
             pam_service_name=vsftpd\nsecure_chroot_dir=/var/run/vsftpd/empty\nmax_clients=0\n\
             max_per_ip=0\nxferlog_enable=NO\n",
            root.display()
        ),
    )
    .expect("vsftpd config");
    let mut child = Command::new("vsftpd")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vsftpd");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..200 {
        if TcpStream::connect(addr).is_ok() {
            return (child, addr);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("vsftpd did not start listening on {addr} within 2 s");
}
