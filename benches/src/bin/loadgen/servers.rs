//! The servers under load, each in a process of its own so that its CPU
//! time and memory are its own: the relay on tokio, on smol, the peers
//! (`peers/`), and the baseline sink.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ftprelay_tokio::proto::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, RelayConfig, Upload,
};
use tokio::net::TcpStream;

use crate::peers::Peer;
use crate::queued::Mode;

/// A server the load runs against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A plain TCP-to-file copy.
    Sink,
    /// The same, each file and its directory synced before the answer:
    /// the fsync-per-file baseline of `loadgen queue`.
    SyncedSink,
    /// ftprelay-tokio.
    Tokio,
    /// ftprelay-smol.
    Smol,
    /// ftprelay-tokio with FTPS (the bench's certificate).
    TokioTls,
    /// ftprelay-smol with FTPS.
    SmolTls,
    /// A peer FTP server, in plain FTP.
    Peer(Peer),
    /// A peer with FTPS.
    PeerTls(Peer),
    /// ftprelay-tokio delivering through a queue, or not
    /// (`loadgen queue`).
    Queued(Mode),
    /// The `ftprelay` command (`--discard`), with `--metrics` scraped
    /// during the load or without it (`loadgen metrics`).
    Cli {
        /// `--metrics` on.
        metrics: bool,
    },
}

impl Role {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Role::Sink => "baseline",
            Role::SyncedSink => "fsync each",
            Role::Tokio => "tokio",
            Role::Smol => "smol",
            Role::TokioTls => "tokio TLS",
            Role::SmolTls => "smol TLS",
            Role::Peer(peer) => peer.label(),
            Role::PeerTls(peer) => peer.label(),
            Role::Queued(mode) => mode.label(),
            Role::Cli { metrics: false } => "no metrics",
            Role::Cli { metrics: true } => "--metrics",
        }
    }

    /// The column of the run's table: the server, whatever the protocol.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Role::TokioTls => "tokio",
            Role::SmolTls => "smol",
            other => other.label(),
        }
    }

    /// Whether the load speaks FTPS to it.
    pub(crate) fn is_tls(self) -> bool {
        matches!(self, Role::TokioTls | Role::SmolTls | Role::PeerTls(_))
    }

    fn arguments(self) -> Vec<&'static str> {
        match self {
            Role::Sink => vec!["serve-sink"],
            Role::SyncedSink => vec!["serve-synced-sink"],
            Role::Tokio => vec!["serve-relay"],
            Role::Smol => vec!["serve-relay-smol"],
            Role::TokioTls => vec!["serve-relay-tls"],
            Role::SmolTls => vec!["serve-relay-smol-tls"],
            Role::Queued(mode) => vec!["serve-queued", mode.argument()],
            Role::Peer(_) | Role::PeerTls(_) => unreachable!("a peer is started directly"),
            Role::Cli { .. } => unreachable!("ftprelay is started directly"),
        }
    }
}

/// A running server.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    role: Role,
}

impl Server {
    /// Starts `role` spooling (or storing) in `spool`.
    pub(crate) fn start(role: Role, spool: &Path) -> Self {
        if let Role::Peer(peer) | Role::PeerTls(peer) = role {
            // The bench's certificate, beside the spool (see `relay_tls`).
            let tls = crate::certs::TlsFiles {
                cert: spool.join("tls/cert.pem"),
                key: spool.join("tls/key.pem"),
            };
            let tls = matches!(role, Role::PeerTls(_)).then_some(&tls);
            let (child, addr) = peer.start(&spool.join(peer.label()), tls);
            return Self { child, addr, role };
        }
        if let Role::Cli { metrics } = role {
            let (child, addr) = crate::metrics::start(spool, metrics);
            return Self { child, addr, role };
        }
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(role.arguments())
            .arg(spool)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its port");
        let port: u16 = line.trim().parse().expect("a port number");
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            role,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our servers stop when their standard input closes; peers are killed.
        drop(self.child.stdin.take());
        if matches!(
            self.role,
            Role::Peer(_) | Role::PeerTls(_) | Role::Cli { .. }
        ) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Child process: serve until standard input closes.
pub(crate) fn serve(role: Role, spool: &Path) {
    server_runtime().block_on(async {
        let stdin_closed = stdin_closed();
        match role {
            Role::Smol | Role::SmolTls => {
                let tls = (role == Role::SmolTls).then(|| relay_tls(spool));
                // smol's relay runs on a thread of its own, under smol.
                let spool = spool.to_owned();
                let relay = std::thread::spawn(move || {
                    smol::block_on(async {
                        let config = relay_config(&spool);
                        let relay = match tls {
                            Some(tls) => {
                                ftprelay_smol::Relay::bind_with_tls(config, Discard, tls).await
                            }
                            None => ftprelay_smol::Relay::bind(config, Discard).await,
                        }
                        .expect("bind");
                        announce(relay.local_addrs().expect("address")[0].port());
                        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
                        std::thread::spawn(move || {
                            let mut sink = Vec::new();
                            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
                            drop(stop_tx);
                        });
                        relay
                            .serve(async move {
                                let _ = stop_rx.recv().await;
                            })
                            .await
                            .expect("serve");
                    })
                });
                let _ = tokio::task::spawn_blocking(move || relay.join()).await;
            }
            Role::Tokio => serve_tokio_until(spool, Discard, None, stdin_closed).await,
            Role::TokioTls => {
                let tls = Some(relay_tls(spool));
                serve_tokio_until(spool, Discard, tls, stdin_closed).await;
            }
            Role::Sink | Role::SyncedSink => {
                let synced = role == Role::SyncedSink;
                // A deep backlog: 512 sessions connect at once.
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket
                    .bind("127.0.0.1:0".parse().expect("address"))
                    .expect("bind");
                let listener = socket.listen(4096).expect("listen");
                announce(listener.local_addr().expect("address").port());
                let spool = spool.to_owned();
                let accept = async move {
                    let mut count = 0u64;
                    loop {
                        let (stream, _) = listener.accept().await.expect("accept");
                        count += 1;
                        let path = spool.join(format!("sink-{count}"));
                        tokio::spawn(sink_one(stream, path, synced));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stdin_closed => {}
                }
            }
            Role::Peer(_) | Role::PeerTls(_) | Role::Queued(_) | Role::Cli { .. } => {
                unreachable!("not served by this function")
            }
        }
    });
}

/// Child process: the relay on tokio with `authenticator`, spooling in
/// `spool`, until standard input closes.
pub(crate) fn serve_tokio<A: Authenticator + 'static>(spool: &Path, authenticator: A) {
    server_runtime().block_on(async {
        let stdin_closed = stdin_closed();
        serve_tokio_until(spool, authenticator, None, stdin_closed).await;
    });
}

async fn serve_tokio_until<A: Authenticator + 'static>(
    spool: &Path,
    authenticator: A,
    tls: Option<ftprelay_tokio::Tls>,
    stop: tokio::task::JoinHandle<()>,
) {
    let config = relay_config(spool);
    let relay = match tls {
        Some(tls) => ftprelay_tokio::Relay::bind_with_tls(config, authenticator, tls).await,
        None => ftprelay_tokio::Relay::bind(config, authenticator).await,
    }
    .expect("bind");
    announce(relay.local_addrs().expect("address")[0].port());
    relay
        .serve(async {
            let _ = stop.await;
        })
        .await
        .expect("serve");
}

/// The runtime of a server process.
fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Told apart from the load's threads in a profile.
        .thread_name("server-worker")
        .build()
        .expect("runtime")
}

/// Resolves when standard input closes: the driver's word to stop.
fn stdin_closed() -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
}

/// The relay's FTPS identity: the bench's certificate, beside the spool.
fn relay_tls(spool: &Path) -> ftprelay_tokio::Tls {
    let dir = spool.join("tls");
    ftprelay_tokio::Tls::from_pem_files(&dir.join("cert.pem"), &dir.join("key.pem"))
        .expect("the bench's certificate")
}

/// The relay under load: on loopback, spooling in `spool`, with limits the
/// load itself does not hit (10,000 idle sessions from one address).
fn relay_config(spool: &Path) -> RelayConfig {
    let mut config = RelayConfig::default();
    config.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.spool_dir = Some(spool.to_owned());
    config.max_connections = 20_000;
    config.max_connections_per_ip = 20_000;
    config.session.max_file_size = u64::MAX;
    config
}

fn announce(port: u16) {
    println!("{port}");
    std::io::stdout().flush().expect("stdout");
}

/// A raw TCP-to-file copy: what receiving a file costs without FTP. A
/// blocking thread with plain read/write calls, the simplest fast way.
/// `synced`: the file and its directory are synced before the answer,
/// as a server that makes each file durable on its own would.
async fn sink_one(stream: TcpStream, path: PathBuf, synced: bool) {
    let stream = stream.into_std().expect("std stream");
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = stream;
        stream.set_nonblocking(false).expect("blocking");
        let mut file = std::fs::File::create(&path).expect("create");
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = stream.read(&mut buffer).expect("read");
            if read == 0 {
                break;
            }
            file.write_all(&buffer[..read]).expect("write");
        }
        if synced {
            file.sync_all().expect("sync");
            let dir = path.parent().expect("spool dir");
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .expect("sync the directory");
        }
        drop(file);
        std::fs::remove_file(&path).expect("remove");
        stream.write_all(b"k").expect("ack");
    })
    .await
    .expect("sink thread");
}

/// Accepts everyone; the processor does nothing.
struct Discard;

impl Authenticator for Discard {
    type Processor = Discard;
    async fn authenticate(&self, _login: &Login) -> Result<Discard, LoginRejected> {
        Ok(Discard)
    }
}

impl FileProcessor for Discard {
    async fn process(&self, _upload: &Upload) -> Result<(), ProcessError> {
        Ok(())
    }
}
