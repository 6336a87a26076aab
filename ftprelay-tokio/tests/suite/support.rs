//! Test support: a relay on loopback with a processor that records what it
//! saw, and a scripted FTP client for the cases real clients cannot produce.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proto::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, RelayConfig, Upload,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

/// What the processor saw of one upload.
#[derive(Debug, Clone)]
pub struct Seen {
    pub user: String,
    pub name: Vec<u8>,
    pub file_name: Vec<u8>,
    /// The virtual path (devices profile: with folders).
    pub path: Vec<u8>,
    pub bytes: Vec<u8>,
    pub size: u64,
    /// The spool file's permission bits, as the processor found them.
    pub mode: u32,
    pub returned_at: Instant,
    /// Where the upload was spooled.
    pub spool: PathBuf,
}

/// What a store-and-forward processor was given to hold, or to forget.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The virtual path.
    pub path: Vec<u8>,
    /// The spool file, and whether it existed then.
    pub spool: PathBuf,
    pub spool_existed: bool,
    pub bytes: Vec<u8>,
}

/// Shared between the test and the processors of every session.
#[derive(Default)]
pub struct Record {
    pub seen: Mutex<Vec<Seen>>,
    /// Processors of files named `hold*` wait for this.
    pub release: Notify,
    /// Signalled when a `hold*` processor starts waiting.
    pub holding: Notify,
    /// Signalled each time a processor returns.
    pub returned: Notify,
    /// How long every processor takes before returning.
    pub delay: Mutex<Duration>,
    /// Processors of sessions logged in from now on store and forward (a
    /// queue): they admit uploads and hold held ones.
    pub store_and_forward: AtomicBool,
    /// The queue is full: every admission is refused.
    pub queue_full: AtomicBool,
    /// How many times an upload was asked to be admitted.
    pub admissions: AtomicUsize,
    pub held: Mutex<Vec<Kept>>,
    pub forgotten: Mutex<Vec<Kept>>,
}

impl Record {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn held(&self) -> Vec<Kept> {
        self.held.lock().expect("lock").clone()
    }

    pub fn forgotten(&self) -> Vec<Kept> {
        self.forgotten.lock().expect("lock").clone()
    }

    pub fn admissions(&self) -> usize {
        self.admissions.load(Ordering::SeqCst)
    }
}

pub struct Users {
    pub record: Arc<Record>,
}

impl Authenticator for Users {
    type Processor = Recorder;

    async fn authenticate(&self, login: &Login) -> Result<Recorder, LoginRejected> {
        match (login.user(), login.password()) {
            (b"bob", b"secret") | (b"alice", b"pw") => Ok(Recorder {
                user: login.user_lossy().into_owned(),
                record: self.record.clone(),
                store_and_forward: self.record.store_and_forward.load(Ordering::SeqCst),
            }),
            _ => Err(LoginRejected),
        }
    }
}

/// Records each upload, then behaves as the file name says: `fail*` fails,
/// `reject*` is rejected, `panic*` panics, `hold*` waits for the test.
/// As a queue ([`Record::store_and_forward`]), it admits uploads unless the
/// queue is full, and records what it holds and forgets.
pub struct Recorder {
    user: String,
    record: Arc<Record>,
    store_and_forward: bool,
}

impl Recorder {
    fn kept(upload: &Upload) -> Kept {
        Kept {
            path: upload.remote_path().to_vec(),
            spool: upload.path().to_owned(),
            spool_existed: upload.path().exists(),
            bytes: std::fs::read(upload.path()).unwrap_or_default(),
        }
    }
}

impl FileProcessor for Recorder {
    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        use std::os::unix::fs::PermissionsExt;
        // std, not tokio: on the smol adapter this runs outside any tokio
        // runtime. The files are small.
        let bytes =
            std::fs::read(upload.path()).map_err(|e| ProcessError::transient(e.to_string()))?;
        let mode = std::fs::metadata(upload.path())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        let name = upload.file_name().to_vec();
        if name.starts_with(b"hold") {
            let released = self.record.release.notified();
            self.record.holding.notify_one();
            released.await;
        }
        let delay = *self.record.delay.lock().expect("lock");
        if !delay.is_zero() {
            work_for(delay).await;
        }
        if name.starts_with(b"panic") {
            panic!("the test processor panics on request");
        }
        self.record.seen.lock().expect("lock").push(Seen {
            user: self.user.clone(),
            name: upload.name().to_vec(),
            file_name: name.clone(),
            path: upload.remote_path().to_vec(),
            bytes,
            size: upload.size(),
            mode,
            returned_at: Instant::now(),
            spool: upload.path().to_owned(),
        });
        self.record.returned.notify_waiters();
        if name.starts_with(b"fail") {
            return Err(ProcessError::transient("failing on request"));
        }
        if name.starts_with(b"reject") {
            return Err(ProcessError::rejected("rejected on request"));
        }
        Ok(())
    }

    fn store_and_forward(&self) -> bool {
        self.store_and_forward
    }

    fn admit(&self) -> Result<(), ProcessError> {
        self.record.admissions.fetch_add(1, Ordering::SeqCst);
        if self.record.queue_full.load(Ordering::SeqCst) {
            return Err(ProcessError::storage_full("the test queue is full"));
        }
        Ok(())
    }

    async fn hold(&self, upload: &Upload) -> Result<(), ProcessError> {
        let kept = Self::kept(upload);
        self.record.held.lock().expect("lock").push(kept);
        Ok(())
    }

    fn forget(&self, upload: &Upload) {
        let kept = Self::kept(upload);
        self.record.forgotten.lock().expect("lock").push(kept);
    }
}

/// The processor's simulated work, on any runtime: a helper thread takes
/// the time, a runtime-free channel reports it.
async fn work_for(duration: Duration) {
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(duration);
        let _ = done.send(());
    });
    let _ = finished.await;
}

/// A relay started by the test binary's `launch` for the runtime under
/// test, serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    /// The implicit-TLS listener, when there is one.
    pub implicit_addr: Option<SocketAddr>,
    pub spool: PathBuf,
    /// Asks the relay to shut down.
    pub stop: Box<dyn FnOnce() + Send>,
    /// Resolves when `serve` returned.
    pub done: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>,
}

impl Running {
    /// Stops the relay and waits (bounded) until `serve` returned.
    pub async fn shut_down(self) {
        (self.stop)();
        tokio::time::timeout(Duration::from_secs(30), self.done)
            .await
            .expect("serve returns after shutdown")
            .expect("serve");
    }
}

tokio::task_local! {
    /// The runtime the relay under test runs on, named for `launch`.
    pub static RUNTIME: &'static str;
}

/// Binds and serves a relay on the runtime under test.
pub async fn launch(config: RelayConfig, users: Users) -> std::io::Result<Running> {
    crate::launch(RUNTIME.get(), config, users, None).await
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, in PEM files.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn generate() -> Self {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
        let dir = tempfile::tempdir().expect("dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).expect("write");
        std::fs::write(&key, generated.key_pair.serialize_pem()).expect("write");
        Self {
            cert,
            key,
            _dir: dir,
        }
    }
}

/// A relay serving on loopback in the background.
pub struct TestRelay {
    pub addr: SocketAddr,
    /// The implicit-TLS listener (of [`TestRelay::with_tls`]).
    pub implicit_addr: Option<SocketAddr>,
    /// The certificate (of [`TestRelay::with_tls`]).
    pub tls: Option<TlsFiles>,
    pub spool: PathBuf,
    pub record: Arc<Record>,
    running: Option<Running>,
    _spool_dir: tempfile::TempDir,
}

pub fn config() -> RelayConfig {
    let mut config = RelayConfig::default();
    config.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config
}

impl TestRelay {
    pub async fn start() -> Self {
        Self::with_config(config()).await
    }

    /// A relay with FTPS: `AUTH TLS`, and an implicit-TLS listener.
    pub async fn with_tls(mut config: RelayConfig) -> Self {
        let tls = TlsFiles::generate();
        config.implicit_tls_listen = vec!["127.0.0.1:0".parse().expect("address")];
        let mut relay = Self::start_with(config, Some(tls)).await;
        relay.implicit_addr = relay.running.as_ref().and_then(|r| r.implicit_addr);
        relay
    }

    pub async fn with_config(config: RelayConfig) -> Self {
        Self::start_with(config, None).await
    }

    async fn start_with(mut config: RelayConfig, tls: Option<TlsFiles>) -> Self {
        let spool_dir = tempfile::tempdir().expect("spool dir");
        if config.spool_dir.is_none() {
            config.spool_dir = Some(spool_dir.path().to_owned());
        }
        let record = Arc::new(Record::default());
        let users = Users {
            record: record.clone(),
        };
        let paths = tls.as_ref().map(|t| (t.cert.clone(), t.key.clone()));
        let running = crate::launch(RUNTIME.get(), config, users, paths)
            .await
            .expect("bind");
        Self {
            addr: running.addr,
            implicit_addr: None,
            tls,
            spool: running.spool.clone(),
            record,
            running: Some(running),
            _spool_dir: spool_dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The files in the spool directory now.
    pub fn spool_files(&self) -> Vec<PathBuf> {
        spool_files(&self.spool)
    }

    /// Waits (bounded) until an upload's spool file exists; panics if none
    /// appears.
    pub async fn wait_spool_file(&self) {
        wait_until("a spool file to appear", || !self.spool_files().is_empty()).await;
    }

    /// Waits (bounded) until the spool directory is empty; panics if it
    /// never is.
    pub async fn wait_spool_empty(&self) {
        wait_until("the spool to be empty", || self.spool_files().is_empty()).await;
    }

    /// Asks the relay to shut down and waits until `serve` returns.
    pub async fn shut_down(&mut self) {
        if let Some(running) = self.running.take() {
            running.shut_down().await;
        }
    }

    pub async fn client(&self) -> FtpClient {
        FtpClient::connect(self.addr).await
    }

    pub async fn logged_in(&self) -> FtpClient {
        let mut client = self.client().await;
        client.login("bob", "secret").await;
        client
    }
}

/// The files in a spool directory but its lock file (which marks the
/// directory as in use for as long as the relay runs).
pub fn spool_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("spool dir")
        .map(|e| e.expect("entry").path())
        .filter(|path| path.file_name() != Some(std::ffi::OsStr::new(".ftprelay-spool.lock")))
        .collect()
}

/// Checks `condition` every 10 ms for at most 10 s.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A scripted FTP client, for what real clients cannot be made to do.
pub struct FtpClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub local: SocketAddr,
}

/// One reply: its code and its (last) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl FtpClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connected(TcpStream::connect(addr).await.expect("connect")).await
    }

    /// Connects from another loopback address (`127.0.0.3`, say).
    pub async fn connect_from(addr: SocketAddr, from: &str) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("address"))
            .expect("bind");
        Self::connected(socket.connect(addr).await.expect("connect")).await
    }

    async fn connected(stream: TcpStream) -> Self {
        let local = stream.local_addr().expect("local address");
        let (reader, writer) = stream.into_split();
        let mut client = Self {
            reader: BufReader::new(reader),
            writer,
            local,
        };
        let greeting = client.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        client
    }

    /// Reads one whole reply (multi-line replies too).
    pub async fn reply(&mut self) -> Reply {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(20), self.reader.read_line(&mut line))
            .await
            .expect("a reply within 20 s")
            .expect("read");
        assert!(read > 0, "the connection closed instead of replying");
        let code: u16 = line[..3].parse().expect("reply code");
        if line.as_bytes()[3] == b'-' {
            let end = format!("{code} ");
            loop {
                line.clear();
                self.reader.read_line(&mut line).await.expect("read");
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        Reply {
            code,
            text: line[4..].trim_end().to_owned(),
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Sends `bytes` as TCP urgent (out-of-band) data.
    pub async fn send_urgent(&mut self, bytes: &[u8]) {
        let socket = socket2::SockRef::from(self.writer.as_ref());
        socket.send_out_of_band(bytes).expect("send urgent data");
    }

    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(line).await;
        self.reply().await
    }

    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line).await;
        assert_eq!(reply.code, code, "{line}: {reply:?}");
        reply
    }

    pub async fn login(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331).await;
        self.expect(&format!("PASS {password}"), 230).await;
    }

    /// PASV: the address the 227 names.
    pub async fn pasv(&mut self) -> SocketAddr {
        let reply = self.expect("PASV", 227).await;
        let inner = reply
            .text
            .split(['(', ')'])
            .nth(1)
            .expect("227 (h1,h2,h3,h4,p1,p2)");
        let n: Vec<u8> = inner
            .split(',')
            .map(|n| n.parse().expect("number"))
            .collect();
        SocketAddr::from(([n[0], n[1], n[2], n[3]], u16::from_be_bytes([n[4], n[5]])))
    }

    /// EPSV: the data address (the control address with the 229 port).
    pub async fn epsv(&mut self, control: SocketAddr) -> SocketAddr {
        let reply = self.expect("EPSV", 229).await;
        let port: u16 = reply
            .text
            .split('|')
            .nth(3)
            .expect("(|||port|)")
            .parse()
            .expect("port");
        SocketAddr::new(control.ip(), port)
    }

    /// A passive data connection to `data_addr` from this client's own
    /// address (a client connected from `127.0.0.3` sends its data from
    /// there too).
    pub async fn connect_data(&self, data_addr: SocketAddr) -> TcpStream {
        let socket = match self.local {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("socket");
        socket
            .bind(SocketAddr::new(self.local.ip(), 0))
            .expect("bind");
        socket.connect(data_addr).await.expect("data connect")
    }

    /// PASV, the data connection, STOR and its 150: returns the open data
    /// connection, ready for the upload's bytes.
    pub async fn begin_upload(&mut self, name: &str) -> TcpStream {
        let data_addr = self.pasv().await;
        let data = TcpStream::connect(data_addr).await.expect("data connect");
        self.expect(&format!("STOR {name}"), 150).await;
        data
    }

    /// A listing command over a fresh passive channel: the bytes sent.
    pub async fn list(&mut self, line: &str) -> Vec<u8> {
        let data_addr = self.pasv().await;
        let mut data = TcpStream::connect(data_addr).await.expect("data connect");
        self.expect(line, 150).await;
        let mut listing = Vec::new();
        data.read_to_end(&mut listing).await.expect("listing");
        assert_eq!(self.reply().await.code, 226, "{line}");
        listing
    }

    /// A whole passive upload: returns the final reply.
    pub async fn upload(&mut self, name: &str, bytes: &[u8]) -> Reply {
        let data_addr = self.pasv().await;
        self.upload_to(data_addr, name, bytes).await
    }

    /// An upload over a passive listener already announced at `data_addr`.
    pub async fn upload_to(&mut self, data_addr: SocketAddr, name: &str, bytes: &[u8]) -> Reply {
        let data = TcpStream::connect(data_addr).await.expect("data connect");
        self.upload_over(data, name, bytes).await
    }

    /// STOR over the open data connection `data`: its 150, the bytes, the
    /// final reply.
    async fn upload_over(&mut self, mut data: TcpStream, name: &str, bytes: &[u8]) -> Reply {
        self.expect(&format!("STOR {name}"), 150).await;
        data.write_all(bytes).await.expect("data write");
        data.shutdown().await.expect("data shutdown");
        drop(data);
        self.reply().await
    }

    /// An upload over a passive listener already announced at
    /// `data_addr`, its data connection from this client's own address.
    pub async fn upload_from_here(
        &mut self,
        data_addr: SocketAddr,
        name: &str,
        bytes: &[u8],
    ) -> Reply {
        let data = self.connect_data(data_addr).await;
        self.upload_over(data, name, bytes).await
    }

    /// Whether the server closed the control connection (reads EOF).
    pub async fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(20), self.reader.read_to_end(&mut rest)).await,
            Ok(Ok(_))
        )
    }
}

/// `len` consecutive ports, free on 127.0.0.1 now, below the range the
/// system picks ephemeral ports from (so no other test's listener takes
/// one meanwhile).
pub fn free_port_range(len: u16) -> std::ops::RangeInclusive<u16> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let spread = std::process::id() as usize * 7919;
    for attempt in 0..200 {
        let turn = NEXT.fetch_add(1, Ordering::Relaxed) + attempt;
        let first = 20_000 + ((spread + turn * 613) % 12_000) as u16;
        let ports = first..=first + len - 1;
        let free = ports
            .clone()
            .map(|port| std::net::TcpListener::bind(("127.0.0.1", port)))
            .collect::<Result<Vec<_>, _>>()
            .is_ok();
        if free {
            return ports;
        }
    }
    panic!("no {len} consecutive free ports found");
}

/// A file of `len` bytes that are not all alike.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}
