//! The clients of the load: an FTP session (plain, or explicit FTPS with
//! `PROT P`), and the baseline's plain TCP connection per file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf,
    WriteHalf,
};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use crate::peers::{PASSWORD, USER};

/// A connection of either kind, control or data.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The client side of FTPS: TLS 1.3 with AES-128-GCM only (so that every
/// server is measured with the same cipher, the one `openssl speed -evp
/// aes-128-gcm` is the ceiling of), trusting the bench's certificate;
/// data connections resume the control connection's session.
#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
}

impl Tls {
    /// Trusts the certificate in the PEM file `cert`.
    pub(crate) fn trusting(cert: &Path) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert).expect("the certificate") {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    async fn wrap(&self, stream: TcpStream) -> Box<dyn Stream> {
        let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        let stream = self
            .connector
            .connect(name, stream)
            .await
            .expect("TLS handshake");
        Box::new(stream)
    }
}

/// Writes `size` bytes (repeating `payload`), then closes the writing side
/// (under TLS: close_notify first).
async fn send_payload(stream: &mut (impl AsyncWrite + Unpin), size: u64, payload: &[u8]) {
    let mut left = size;
    while left > 0 {
        let chunk = left.min(payload.len() as u64) as usize;
        stream.write_all(&payload[..chunk]).await.expect("send");
        left -= chunk as u64;
    }
    stream.shutdown().await.expect("shutdown");
}

/// Sessions between their connect and their greeting at once. A server
/// speaks first: a connection whose handshake the server dropped from a
/// full accept queue is established for the client but not for the
/// server, and would wait for its greeting forever. vsftpd listens with a
/// backlog of 32 (fixed), which 512 sessions connecting at once overflow.
static CONNECTING: Semaphore = Semaphore::const_new(16);
/// How long a greeting may take before the session connects again.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
const GREETING_TRIES: usize = 3;
/// How long a data connection is read for the server's close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a session asks for a passive port that was refused.
const EPSV_TRIES: usize = 3;

/// A logged-in FTP control connection.
pub(crate) struct Ftp {
    reader: BufReader<ReadHalf<Box<dyn Stream>>>,
    writer: WriteHalf<Box<dyn Stream>>,
    addr: SocketAddr,
    /// FTPS: the data connections are protected too.
    tls: Option<Tls>,
    line: String,
}

impl Ftp {
    /// Connects and logs in, with FTPS when `tls` is given.
    pub(crate) async fn connect(addr: SocketAddr, tls: Option<&Tls>) -> Self {
        match tls {
            Some(tls) => Self::login_tls(addr, tls).await,
            None => Self::login(addr).await,
        }
    }

    /// Connects and logs in.
    pub(crate) async fn login(addr: SocketAddr) -> Self {
        let control = greeted(addr).await;
        let mut ftp = Self::over(Box::new(control), addr, None);
        ftp.authenticate().await;
        ftp
    }

    /// Connects, `AUTH TLS`, logs in, `PBSZ 0`, `PROT P`.
    pub(crate) async fn login_tls(addr: SocketAddr, tls: &Tls) -> Self {
        let mut control = greeted(addr).await;
        control.write_all(b"AUTH TLS\r\n").await.expect("send");
        expect_plain(&mut control, "234").await;
        let control = tls.wrap(control).await;
        let mut ftp = Self::over(control, addr, Some(tls.clone()));
        ftp.authenticate().await;
        ftp.send("PBSZ 0\r\n").await;
        ftp.expect("200").await;
        ftp.send("PROT P\r\n").await;
        ftp.expect("200").await;
        ftp
    }

    fn over(control: Box<dyn Stream>, addr: SocketAddr, tls: Option<Tls>) -> Self {
        let (reader, writer) = tokio::io::split(control);
        Self {
            reader: BufReader::new(reader),
            writer,
            addr,
            tls,
            line: String::new(),
        }
    }

    async fn authenticate(&mut self) {
        self.send(&format!("USER {USER}\r\n")).await;
        self.expect("331").await;
        self.send(&format!("PASS {PASSWORD}\r\n")).await;
        self.expect("230").await;
        // Binary, as every client sends for a file: in ASCII mode (the
        // default) some servers convert line ends on upload.
        self.send("TYPE I\r\n").await;
        self.expect("200").await;
    }

    async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.expect("send");
        self.writer.flush().await.expect("send");
    }

    /// Reads one reply, to its last line (Pure-FTPd's greeting and 226
    /// span several: `226-...` up to `226 ...`); panics on any other code
    /// than one starting with `code`.
    async fn expect(&mut self, code: &str) -> &str {
        self.reply().await;
        assert!(
            self.line.starts_with(code),
            "expected {code}, got {:?}",
            self.line
        );
        &self.line
    }

    /// Reads one reply, to its last line, into `line`.
    async fn reply(&mut self) {
        loop {
            self.line.clear();
            let read = self.reader.read_line(&mut self.line).await.expect("reply");
            assert!(read > 0, "connection closed in the middle of a reply");
            if is_last_line(self.line.as_bytes()) {
                break;
            }
        }
    }

    /// `EPSV`, asked again (at most [`EPSV_TRIES`] times) after a `425`:
    /// ProFTPD picks a random port of its range and answers "425 EPSV:
    /// Address already in use" when another session holds it. The tries
    /// count in the upload's time. Returns the port.
    async fn passive_port(&mut self) -> u16 {
        for _ in 0..EPSV_TRIES {
            self.send("EPSV\r\n").await;
            self.reply().await;
            if !self.line.starts_with("425") {
                break;
            }
        }
        assert!(
            self.line.starts_with("229"),
            "expected 229, got {:?}",
            self.line
        );
        self.line
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .expect("229 port")
    }

    /// One upload (EPSV, connect, STOR, 150, data, 226); returns how long
    /// it took, as the client saw it.
    pub(crate) async fn upload(&mut self, name: &str, size: u64, payload: &[u8]) -> Duration {
        let started = Instant::now();
        let port = self.passive_port().await;
        let data = connect(SocketAddr::new(self.addr.ip(), port)).await;
        self.send(&format!("STOR {name}\r\n")).await;
        // 150, or 125 (pyftpdlib) when the data connection is already open.
        self.expect("1").await;
        let mut data: Box<dyn Stream> = match &self.tls {
            // The server starts its side of the handshake after its 150.
            Some(tls) => tls.wrap(data).await,
            None => Box::new(data),
        };
        send_payload(&mut data, size, payload).await;
        // A lingering close: the server's own close is read before the
        // socket is dropped. Closing with unread bytes (an OpenSSL
        // server's TLS 1.3 session tickets) sends a reset, and a reset
        // discards what the server has not read yet: vsftpd then answers
        // "426 Failure reading network stream".
        tokio::join!(self.expect("226"), drain(&mut data));
        started.elapsed()
    }

    pub(crate) async fn quit(mut self) {
        self.send("QUIT\r\n").await;
    }
}

/// Reads `stream` to its end (or its first error), discarding the bytes,
/// for at most [`DRAIN_TIMEOUT`]: a server that never closes its side
/// does not hold the run.
async fn drain(stream: &mut (impl AsyncRead + Unpin)) {
    let mut sink = [0u8; 4096];
    let to_end = async {
        while let Ok(read) = stream.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, to_end).await;
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Whether `line` is the last line of a reply (`NNN text`).
fn is_last_line(line: &[u8]) -> bool {
    line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' '
}

/// Connects and reads the greeting, [`CONNECTING`] sessions at a time;
/// connects again when the greeting does not come.
async fn greeted(addr: SocketAddr) -> TcpStream {
    let _turn = CONNECTING.acquire().await.expect("never closed");
    for _ in 0..GREETING_TRIES {
        let mut control = connect(addr).await;
        if tokio::time::timeout(GREETING_TIMEOUT, expect_plain(&mut control, "220"))
            .await
            .is_ok()
        {
            return control;
        }
    }
    panic!("no greeting from {addr} in {GREETING_TRIES} tries of {GREETING_TIMEOUT:?}");
}

/// Reads one plain reply a byte at a time, to its last line (nothing may
/// be read past a 234: TLS starts there); panics on another code.
async fn expect_plain(stream: &mut TcpStream, code: &str) {
    let mut line = Vec::new();
    loop {
        line.clear();
        while !line.ends_with(b"\n") {
            let byte = stream.read_u8().await.expect("reply");
            line.push(byte);
        }
        if is_last_line(&line) {
            break;
        }
    }
    assert!(
        line.starts_with(code.as_bytes()),
        "expected {code}, got {:?}",
        String::from_utf8_lossy(&line)
    );
}

/// The baseline: one plain TCP connection per file; the sink acknowledges
/// with one byte once the file is written and removed.
pub(crate) async fn sink_upload(addr: SocketAddr, size: u64, payload: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send_payload(&mut stream, size, payload).await;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).await.expect("ack");
}
