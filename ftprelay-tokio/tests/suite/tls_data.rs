//! Protected data connections as clients really use them: empty listings
//! over TLS, implicit FTPS without `PROT`, a handshake before `STOR`, and
//! the switch that requires data connections to resume the control
//! connection's TLS session.

use std::time::Duration;

use tokio::process::Command;

use super::support::{TestRelay, config};
use crate::proto::{Profile, RelayConfig};

super::register::suite_tests!(
    tls_data,
    empty_listings_over_tls_succeed(async {
        // An empty listing has no bytes to start the handshake with: the relay
        // must handshake anyway, or the client sees 150 then 426.
        let relay = TestRelay::with_tls(devices()).await;
        let cert = relay.tls.as_ref().expect("tls").cert.clone();
        let output = run(Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "--ssl-reqd",
                "-l",
                "--user",
                "bob:secret",
            ])
            .arg("--cacert")
            .arg(&cert)
            .arg(format!("ftp://127.0.0.1:{}/", relay.port())))
        .await;
        assert_eq!(succeeded(&output), "", "curl -l lists nothing");
        let script = format!(
            "{PRELUDE}
ftp = explicit()
print(ftp.nlst())
print(ftp.retrlines('LIST'))
print(ftp.retrlines('MLSD'))
ftp.quit()
"
        );
        let lines = succeeded(&python(&relay, &script).await);
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], "[]", "{lines:?}");
        assert!(lines[1].starts_with("226"), "{lines:?}");
        assert!(lines[2].starts_with("226"), "{lines:?}");
    }),
    implicit_ftps_without_prot_protects_data(async {
        // Perl's Net::FTP with SSL => 1 never sends PBSZ/PROT and starts TLS on
        // every data connection: the file must arrive, not its ClientHello.
        let relay = TestRelay::with_tls(config()).await;
        let script = format!(
            "{PRELUDE}
ftp = Implicit(context=context, timeout=15)
ftp.connect('127.0.0.1', implicit_port, 15)
ftp.login('bob', 'secret')
ftp._prot_p = True  # TLS on data connections, without sending PROT P
print(ftp.storbinary('STOR implicit.bin', io.BytesIO(b'implicit bytes' * 1000)))
# PROT C still gives clear data connections.
ftp.prot_c()
print(ftp.storbinary('STOR clear.bin', io.BytesIO(b'clear bytes')))
ftp.quit()
"
        );
        let stdout = succeeded(&python(&relay, &script).await);
        assert!(stdout.lines().all(|l| l.starts_with("226")), "{stdout}");
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen[0].bytes == b"implicit bytes".repeat(1000));
        assert_eq!(seen[1].bytes, b"clear bytes");
        assert!(relay.spool_files().is_empty());
    }),
    a_client_that_handshakes_before_stor_uploads(async {
        // python's aioftp starts TLS on the data connection as soon as it is
        // connected, and sends STOR only once the handshake is done.
        let relay = TestRelay::with_tls(config()).await;
        let script = format!(
            "{PRELUDE}
ftp = explicit()
_, data_port = ftplib.parse227(ftp.sendcmd('PASV'))
raw = socket.create_connection(('127.0.0.1', data_port), 15)
data = context.wrap_socket(raw, server_hostname='127.0.0.1')  # the handshake
ftp.putcmd('STOR early.bin')
print(ftp.getresp(), flush=True)
data.sendall(b'handshaken before STOR' * 100)
data.unwrap().close()
print(ftp.voidresp(), flush=True)
ftp.quit()
"
        );
        let stdout = succeeded(&python(&relay, &script).await);
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].starts_with("150"), "{lines:?}");
        assert!(lines[1].starts_with("226"), "{lines:?}");
        assert!(relay.record.seen()[0].bytes == b"handshaken before STOR".repeat(100));
    }),
    required_session_reuse_refuses_data_connections_that_do_not_resume(async {
        assert!(
            !RelayConfig::default().tls_require_session_reuse,
            "off by default"
        );
        let mut config = config();
        config.tls_require_session_reuse = true;
        let relay = TestRelay::with_tls(config).await;
        let (printed, curl) = uploads_with_and_without_resumption(&relay, "ftplib.FTP_TLS").await;
        let lines: Vec<&str> = printed.lines().collect();
        assert!(lines[0].starts_with("522"), "{lines:?}");
        assert!(
            lines[1].starts_with("200"),
            "the session goes on: {lines:?}"
        );
        assert!(relay.spool_files().is_empty());
        // curl resumes its session on the data connection: it works.
        succeeded(&curl);
        let seen = relay.record.seen();
        assert_eq!(seen.len(), 1, "only curl's upload");
        assert_eq!(seen[0].bytes, b"curl bytes");
        // And a python client that resumes works too.
        let (printed, _) = uploads_with_and_without_resumption(&relay, "Resuming").await;
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines[0], "resumed", "{lines:?}");
        assert!(lines[1].starts_with("226"), "{lines:?}");
        assert!(
            relay
                .record
                .seen()
                .iter()
                .any(|s| s.bytes == b"python bytes")
        );
    }),
    without_the_switch_data_connections_need_not_resume(async {
        let relay = TestRelay::with_tls(config()).await;
        let (printed, curl) = uploads_with_and_without_resumption(&relay, "ftplib.FTP_TLS").await;
        assert!(printed.starts_with("226"), "{printed}");
        succeeded(&curl);
        assert_eq!(relay.record.seen().len(), 2);
    }),
);

async fn run(command: &mut Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the client finishes")
        .expect("the client runs")
}

/// The client's standard output, once it succeeded.
fn succeeded(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a python script with the relay's explicit port, implicit port
/// and certificate as its arguments.
async fn python(relay: &TestRelay, script: &str) -> std::process::Output {
    let cert = relay.tls.as_ref().expect("tls").cert.clone();
    let implicit = relay.implicit_addr.expect("implicit").port();
    run(Command::new("python3")
        .args([
            "-c",
            script,
            &relay.port().to_string(),
            &implicit.to_string(),
        ])
        .arg(&cert))
    .await
}

/// What every script below starts with: the context, and FTP_TLS classes
/// for implicit FTPS and for data connections that resume the control
/// connection's session.
const PRELUDE: &str = r#"
import ftplib, io, socket, ssl, sys
port, implicit_port, cert = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=cert)

class Implicit(ftplib.FTP_TLS):
    def connect(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        raw = socket.create_connection((host, port), timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

class Resuming(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(
            conn, server_hostname=self.host, session=self.sock.session)
        print("resumed" if conn.session_reused else "not resumed", flush=True)
        return conn, size

def explicit(cls=ftplib.FTP_TLS):
    ftp = cls(context=context, timeout=15)
    ftp.connect("127.0.0.1", port)
    ftp.login("bob", "secret")
    ftp.prot_p()
    return ftp
"#;

fn devices() -> RelayConfig {
    let mut config = config();
    config.session.profile = Profile::Devices;
    config
}

/// An upload by python whose data connection does (`Resuming`) or does not
/// (`ftplib.FTP_TLS`) resume the control connection's session, then one by
/// curl, which resumes: what python printed and curl's output.
async fn uploads_with_and_without_resumption(
    relay: &TestRelay,
    class: &str,
) -> (String, std::process::Output) {
    let script = format!(
        "{PRELUDE}
ftp = explicit({class})
try:
    data = ftp.transfercmd('STOR py.bin')
    try:
        # A refused connection may be closed before all is sent.
        data.sendall(b'python bytes')
        data.unwrap()
    except OSError:
        pass
    data.close()
    print(ftp.voidresp(), flush=True)
except ftplib.error_perm as refused:
    print(refused, flush=True)
print(ftp.sendcmd('NOOP'), flush=True)
ftp.quit()
"
    );
    let printed = succeeded(&python(relay, &script).await);
    let cert = relay.tls.as_ref().expect("tls").cert.clone();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("curl.bin");
    std::fs::write(&file, b"curl bytes").expect("write");
    let curl = run(Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--ssl-reqd",
            "--user",
            "bob:secret",
        ])
        .arg("--cacert")
        .arg(&cert)
        .arg("-T")
        .arg(&file)
        .arg(format!("ftp://127.0.0.1:{}/curl.bin", relay.port())))
    .await;
    (printed, curl)
}
