//! Under systemd: `Type=notify` readiness (READY=1 once listening,
//! STOPPING=1 on SIGTERM) and socket activation, with the real
//! `systemd-socket-activate` passing the relay its listener, on both
//! runtimes.

mod support;

use std::io::Read as _;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{BIN, KillOnDrop, Relay, signal, wait_until};

/// The next datagram on `socket`, as text (within 20 s).
fn next_notification(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 4096];
    let read = socket
        .recv(&mut buffer)
        .expect("a notification within 20 s");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

support::on_every_runtime!(
    a_notify_service_hears_ready_once_listening_and_stopping_on_sigterm({
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut relay = Relay::start_with_env(
            &["--user", "cam:pw", "--discard"],
            &[("NOTIFY_SOCKET", path.to_str().expect("path"))],
        );
        let ready = next_notification(&socket);
        assert!(ready.contains("READY=1"), "{ready}");
        assert!(
            ready.contains(&format!("STATUS=listening on {}", relay.addr)),
            "{ready}"
        );
        signal(&relay.child, "TERM");
        let stopping = next_notification(&socket);
        assert!(stopping.contains("STOPPING=1"), "{stopping}");
        let status = relay.wait();
        assert!(status.success(), "{status:?}");
    }),
);

/// A port that was free a moment ago.
fn free_port(udp: bool) -> u16 {
    if udp {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("addr").port()
    } else {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }
}

/// `systemd-socket-activate` listening on a free 127.0.0.1 port, to start
/// `ftprelay ARGS` with it; the port and the process (retried on another
/// port if the one chosen was taken meanwhile).
fn socket_activate(extra: &[&str], args: &[&str]) -> (u16, Child) {
    for _ in 0..10 {
        let datagram = extra.contains(&"--datagram");
        let port = free_port(datagram);
        let mut child = Command::new("systemd-socket-activate")
            .args(extra)
            .args(["-l", &format!("127.0.0.1:{port}"), BIN])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd package)");
        // It listens at once; the relay starts at the first connection.
        let mut listening = false;
        wait_until(
            "systemd-socket-activate to listen",
            || {
                listening = if datagram {
                    std::fs::read_to_string("/proc/net/udp")
                        .is_ok_and(|t| t.contains(&format!("0100007F:{port:04X}")))
                } else {
                    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
                        t.lines()
                            .any(|l| l.contains(&format!("0100007F:{port:04X} 00000000:0000 0A")))
                    })
                };
                listening || child.try_wait().ok().flatten().is_some()
            },
            String::new,
        );
        if listening {
            return (port, child);
        }
    }
    panic!("no free port for systemd-socket-activate");
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

#[test]
fn socket_activation_serves_on_the_listener_systemd_passed() {
    for runtime in ["tokio", "smol"] {
        let out = tempfile::tempdir().expect("out");
        let spool = tempfile::tempdir().expect("spool");
        let work = tempfile::tempdir().expect("work");
        let (port, child) = socket_activate(
            &[],
            &[
                "--runtime",
                runtime,
                "--user",
                "cam:pw",
                "--dir",
                out.path().to_str().expect("path"),
                "--spool-dir",
                spool.path().to_str().expect("path"),
            ],
        );
        let mut child = KillOnDrop(child);
        let local = work.path().join("local");
        std::fs::write(&local, b"from a socket-activated relay").expect("write");
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-T"])
            .arg(&local)
            .arg(format!("ftp://cam:pw@127.0.0.1:{port}/snap.jpg"))
            .output()
            .expect("curl");
        assert!(
            output.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            std::fs::read(out.path().join("snap.jpg")).expect("delivered"),
            b"from a socket-activated relay",
            "{runtime}"
        );
        signal(&child.0, "TERM");
        let mut status = None;
        wait_until(
            "the socket-activated relay to exit",
            || {
                status = child.0.try_wait().expect("wait");
                status.is_some()
            },
            String::new,
        );
        let status = status.expect("exited");
        let log = stderr_of(&mut child.0);
        assert!(status.success(), "{runtime}: {status:?} {log}");
        assert!(
            log.contains(&format!("ftprelay listening listen=127.0.0.1:{port}")),
            "{runtime}: {log}"
        );
    }
}

#[test]
fn a_passed_socket_that_is_not_a_tcp_listener_is_a_one_line_error() {
    let (port, child) = socket_activate(&["--datagram"], &["--user", "cam:pw", "--discard"]);
    let mut child = KillOnDrop(child);
    // The relay starts when the first datagram arrives.
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sender.send_to(b"hello", ("127.0.0.1", port)).expect("send");
    let mut status = None;
    wait_until(
        "the relay to refuse its socket",
        || {
            status = child.0.try_wait().expect("wait");
            status.is_some()
        },
        String::new,
    );
    let log = stderr_of(&mut child.0);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{log}");
    // systemd-socket-activate says what it does; the relay says one line.
    let ours: Vec<&str> = log.lines().filter(|l| l.starts_with("ftprelay")).collect();
    assert_eq!(
        ours,
        ["ftprelay: socket activation: the socket passed as fd 3 is not a listening TCP socket"],
        "{log}"
    );
}
