//! The clients of the load: an FTP session, and the baseline's plain TCP
//! connection per file.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

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
        let control = TcpStream::connect(addr).await.expect("connect");
        control.set_nodelay(true).expect("nodelay");
        let (reader, writer) = control.into_split();
        let mut ftp = Self {
            reader: BufReader::new(reader),
            writer,
            addr,
            line: String::new(),
        };
        ftp.expect("220").await;
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
