//! The end-to-end load generator: uploads N files of S bytes over C
//! concurrent sessions to a relay with a discard processor, and in the same
//! run pushes the same bytes through a plain TCP-to-file copy (the
//! baseline). Each server runs in its own child process, so that its CPU
//! time is its own.
//!
//! ```text
//! cargo run --release -p ftprelay-benches --bin loadgen -- [--files N] [--size BYTES] [--sessions C]
//! ```
//!
//! Without arguments it runs the two standard scenarios: one 1 GiB upload,
//! and 4 KiB files over 32 sessions × 200 files. Each is run once to warm
//! up, then three times; the median run is printed.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftprelay_tokio::Relay;
use ftprelay_tokio::proto::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, RelayConfig, Upload,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Measured runs per scenario and server; the median is reported.
const RUNS: usize = 3;

/// One scenario: `sessions` clients, each uploading `files_per_session`
/// files of `size` bytes.
#[derive(Clone, Copy)]
struct Load {
    name: &'static str,
    sessions: usize,
    files_per_session: usize,
    size: u64,
}

impl Load {
    fn files(self) -> usize {
        self.sessions * self.files_per_session
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve-relay") => serve(Role::Relay, Path::new(&args[2])),
        Some("serve-relay-smol") => serve(Role::RelaySmol, Path::new(&args[2])),
        Some("serve-sink") => serve(Role::Sink, Path::new(&args[2])),
        _ => drive(&args[1..]),
    }
}

fn drive(args: &[String]) {
    let loads = match parse_custom(args) {
        Some(load) => vec![load],
        None => vec![
            Load {
                name: "1 GiB upload",
                sessions: 1,
                files_per_session: 1,
                size: 1 << 30,
            },
            Load {
                name: "4 KiB files",
                sessions: 32,
                files_per_session: 200,
                size: 4096,
            },
        ],
    };
    let spool = spool_dir();
    println!(
        "{:<14} {:<9} {:>6} {:>11} {:>8} {:>9} {:>9} {:>10} {:>10}",
        "scenario",
        "server",
        "files",
        "bytes/file",
        "seconds",
        "files/s",
        "MB/s",
        "server CPU",
        "CPU s/GiB"
    );
    for load in loads {
        for role in [Role::Sink, Role::Relay, Role::RelaySmol] {
            // The first run pays for the first touch of memory (the spool is
            // on tmpfs): discard it, then report the median of three.
            run_against(role, load, &spool);
            let mut runs: Vec<Outcome> =
                (0..RUNS).map(|_| run_against(role, load, &spool)).collect();
            runs.sort_by_key(|run| run.elapsed);
            let result = &runs[RUNS / 2];
            let seconds = result.elapsed.as_secs_f64();
            let total = load.files() as f64 * load.size as f64;
            println!(
                "{:<14} {:<9} {:>6} {:>11} {:>8.3} {:>9.0} {:>9.1} {:>10.3} {:>10.3}",
                load.name,
                role.label(),
                load.files(),
                load.size,
                seconds,
                load.files() as f64 / seconds,
                total / seconds / 1e6,
                result.cpu_seconds,
                result.cpu_seconds / (total / (1u64 << 30) as f64),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&spool);
}

fn parse_custom(args: &[String]) -> Option<Load> {
    if args.is_empty() {
        return None;
    }
    let mut load = Load {
        name: "custom",
        sessions: 1,
        files_per_session: 1,
        size: 4096,
    };
    let mut files = 1;
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value: u64 = iter
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage(flag));
        match flag.as_str() {
            "--files" => files = value as usize,
            "--size" => load.size = value,
            "--sessions" => load.sessions = value as usize,
            _ => usage(flag),
        }
    }
    load.files_per_session = files.div_ceil(load.sessions.max(1));
    Some(load)
}

fn usage(flag: &str) -> ! {
    eprintln!("loadgen: bad argument {flag}; use [--files N] [--size BYTES] [--sessions C]");
    std::process::exit(2);
}

/// tmpfs when there is one: the figures are about the relay, not the disk.
fn spool_dir() -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_owned()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("ftprelay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("spool dir");
    dir
}

#[derive(Clone, Copy)]
enum Role {
    /// ftprelay-tokio.
    Relay,
    /// ftprelay-smol.
    RelaySmol,
    /// A plain TCP-to-file copy.
    Sink,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Relay => "tokio",
            Role::RelaySmol => "smol",
            Role::Sink => "baseline",
        }
    }
}

struct Outcome {
    elapsed: Duration,
    cpu_seconds: f64,
}

/// Starts the server as a child process, runs the load against it, and
/// reads the child's CPU time around the load.
fn run_against(role: Role, load: Load, spool: &Path) -> Outcome {
    let subcommand = match role {
        Role::Relay => "serve-relay",
        Role::RelaySmol => "serve-relay-smol",
        Role::Sink => "serve-sink",
    };
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg(subcommand)
        .arg(spool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let port = read_port(&mut child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let cpu_before = cpu_seconds(child.id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    runtime.block_on(async {
        let payload = Arc::new(vec![0x5a; 1 << 20]);
        let mut clients = Vec::new();
        for session in 0..load.sessions {
            let payload = payload.clone();
            clients.push(tokio::spawn(async move {
                match role {
                    Role::Relay | Role::RelaySmol => {
                        ftp_session(addr, session, load, &payload).await
                    }
                    Role::Sink => sink_session(addr, load, &payload).await,
                }
            }));
        }
        for client in clients {
            client.await.expect("client task");
        }
    });
    let elapsed = started.elapsed();
    let cpu_seconds = cpu_seconds(child.id()) - cpu_before;
    drop(child.stdin.take());
    let _ = child.wait();
    Outcome {
        elapsed,
        cpu_seconds,
    }
}

fn read_port(child: &mut Child) -> u16 {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its port");
    line.trim().parse().expect("a port number")
}

/// User plus system CPU seconds of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

async fn send_payload(stream: &mut TcpStream, size: u64, payload: &[u8]) {
    let mut left = size;
    while left > 0 {
        let chunk = left.min(payload.len() as u64) as usize;
        stream.write_all(&payload[..chunk]).await.expect("send");
        left -= chunk as u64;
    }
    stream.shutdown().await.expect("shutdown");
}

/// One FTP session: login, then EPSV + STOR per file, each waiting for 226.
async fn ftp_session(addr: SocketAddr, session: usize, load: Load, payload: &[u8]) {
    let control = TcpStream::connect(addr).await.expect("connect");
    control.set_nodelay(true).expect("nodelay");
    let (reader, mut writer) = control.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    let mut expect = async |reader: &mut BufReader<_>, code: &str| {
        line.clear();
        reader.read_line(&mut line).await.expect("reply");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        line.clone()
    };
    expect(&mut reader, "220").await;
    writer
        .write_all(b"USER bench\r\nPASS bench\r\n")
        .await
        .expect("send");
    expect(&mut reader, "331").await;
    expect(&mut reader, "230").await;
    for file in 0..load.files_per_session {
        writer.write_all(b"EPSV\r\n").await.expect("send");
        let reply = expect(&mut reader, "229").await;
        let port: u16 = reply
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .expect("229 port");
        let mut data = TcpStream::connect((addr.ip(), port))
            .await
            .expect("data connect");
        writer
            .write_all(format!("STOR s{session}-f{file}\r\n").as_bytes())
            .await
            .expect("send");
        expect(&mut reader, "150").await;
        send_payload(&mut data, load.size, payload).await;
        expect(&mut reader, "226").await;
    }
    writer.write_all(b"QUIT\r\n").await.expect("send");
}

/// The baseline: one plain TCP connection per file; the sink acknowledges
/// with one byte once the file is written and removed.
async fn sink_session(addr: SocketAddr, load: Load, payload: &[u8]) {
    for _ in 0..load.files_per_session {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        send_payload(&mut stream, load.size, payload).await;
        let mut ack = [0u8; 1];
        stream.read_exact(&mut ack).await.expect("ack");
    }
}

/// Child process: serve until standard input closes.
fn serve(role: Role, spool: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        });
        match role {
            Role::RelaySmol => {
                // smol's relay runs on a thread of its own, under smol.
                let spool = spool.to_owned();
                let relay = std::thread::spawn(move || {
                    smol::block_on(async {
                        let relay = ftprelay_smol::Relay::bind(relay_config(&spool), Discard)
                            .await
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
            Role::Relay => {
                let relay = Relay::bind(relay_config(spool), Discard)
                    .await
                    .expect("bind");
                announce(relay.local_addrs().expect("address")[0].port());
                relay
                    .serve(async {
                        let _ = stdin_closed.await;
                    })
                    .await
                    .expect("serve");
            }
            Role::Sink => {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                announce(listener.local_addr().expect("address").port());
                let spool = spool.to_owned();
                let accept = async move {
                    let mut count = 0u64;
                    loop {
                        let (stream, _) = listener.accept().await.expect("accept");
                        count += 1;
                        let path = spool.join(format!("sink-{count}"));
                        tokio::spawn(sink_one(stream, path));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stdin_closed => {}
                }
            }
        }
    });
}

/// The relay under load: on loopback, spooling in `spool`, with limits
/// that the load itself does not hit.
fn relay_config(spool: &Path) -> RelayConfig {
    let mut config = RelayConfig::default();
    config.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.spool_dir = Some(spool.to_owned());
    config.max_connections_per_ip = 1024;
    config.session.max_file_size = u64::MAX;
    config
}

fn announce(port: u16) {
    println!("{port}");
    std::io::stdout().flush().expect("stdout");
}

/// A raw TCP-to-file copy: what receiving a file costs without FTP. A
/// blocking thread with plain read/write calls, the simplest fast way.
async fn sink_one(stream: TcpStream, path: PathBuf) {
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
