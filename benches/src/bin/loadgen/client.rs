//! The clients of the load: an FTP session, and the baseline's plain TCP
//! connection per file.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

use crate::peers::{PASSWORD, USER};

/// Writes `size` bytes (repeating `payload`), then closes the writing side.
pub(crate) async fn send_payload(stream: &mut TcpStream, size: u64, payload: &[u8]) {
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

/// A logged-in FTP control connection.
pub(crate) struct Ftp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    addr: SocketAddr,
    line: String,
}

impl Ftp {
    /// Connects and logs in.
    pub(crate) async fn login(addr: SocketAddr) -> Self {
        let mut ftp = Self::greeted(addr).await;
        ftp.send(&format!("USER {USER}\r\n")).await;
        ftp.expect("331").await;
        ftp.send(&format!("PASS {PASSWORD}\r\n")).await;
        ftp.expect("230").await;
        // Binary, as every client sends for a file: in ASCII mode (the
        // default) some servers convert line ends on upload.
        ftp.send("TYPE I\r\n").await;
        ftp.expect("200").await;
        ftp
    }

    /// Connects and reads the greeting, [`CONNECTING`] sessions at a
    /// time; connects again when the greeting does not come.
    async fn greeted(addr: SocketAddr) -> Self {
        let _turn = CONNECTING.acquire().await.expect("never closed");
        for _ in 0..GREETING_TRIES {
            let control = TcpStream::connect(addr).await.expect("connect");
            control.set_nodelay(true).expect("nodelay");
            let (reader, writer) = control.into_split();
            let mut ftp = Self {
                reader: BufReader::new(reader),
                writer,
                addr,
                line: String::new(),
            };
            if tokio::time::timeout(GREETING_TIMEOUT, ftp.expect("220"))
                .await
                .is_ok()
            {
                return ftp;
            }
        }
        panic!("no greeting from {addr} in {GREETING_TRIES} tries of {GREETING_TIMEOUT:?}");
    }

    async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.expect("send");
    }

    /// Reads one reply, to its last line (Pure-FTPd's greeting and 226
    /// span several: `226-...` up to `226 ...`); panics on any other code
    /// than one starting with `code`.
    async fn expect(&mut self, code: &str) -> &str {
        loop {
            self.line.clear();
            let read = self.reader.read_line(&mut self.line).await.expect("reply");
            assert!(read > 0, "connection closed, expected {code}");
            let line = self.line.as_bytes();
            if line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' ' {
                break;
            }
        }
        assert!(
            self.line.starts_with(code),
            "expected {code}, got {:?}",
            self.line
        );
        &self.line
    }

    /// One upload (EPSV, connect, STOR, 150, data, 226); returns how long
    /// it took, as the client saw it.
    pub(crate) async fn upload(&mut self, name: &str, size: u64, payload: &[u8]) -> Duration {
        let started = Instant::now();
        self.send("EPSV\r\n").await;
        let reply = self.expect("229").await;
        let port: u16 = reply
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .expect("229 port");
        let mut data = TcpStream::connect((self.addr.ip(), port))
            .await
            .expect("data connect");
        self.send(&format!("STOR {name}\r\n")).await;
        // 150, or 125 (pyftpdlib) when the data connection is already open.
        self.expect("1").await;
        send_payload(&mut data, size, payload).await;
        self.expect("226").await;
        started.elapsed()
    }

    pub(crate) async fn quit(mut self) {
        self.send("QUIT\r\n").await;
    }
}

/// The baseline: one plain TCP connection per file; the sink acknowledges
/// with one byte once the file is written and removed.
pub(crate) async fn sink_upload(addr: SocketAddr, size: u64, payload: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send_payload(&mut stream, size, payload).await;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).await.expect("ack");
}
