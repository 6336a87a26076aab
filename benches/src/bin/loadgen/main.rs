//! The end-to-end load generator: the relay (on tokio and on smol, with a
//! processor that discards), vsftpd, and a plain TCP-to-file copy (the
//! baseline), measured in the same run on the same machine. Each server
//! runs in a process of its own, so that its CPU time and memory are its
//! own; the spool is on tmpfs.
//!
//! ```text
//! cargo run --release -p ftprelay-benches --bin loadgen
//! cargo run --release -p ftprelay-benches --bin loadgen -- --files N --size BYTES --sessions C
//! ```
//!
//! Without arguments it prints every figure of `benches/README.md`: one
//! 1 GiB upload and 4 KiB files over 32 sessions × 200 (a warm-up run, then
//! the median of three), the latency of one small upload, 10,000 idle
//! logged-in sessions, and the memory while receiving 10 GiB.
//!
//! `loadgen queue [DIR]` measures store and forward instead (`queued.rs`),
//! `loadgen metrics` what `--metrics` costs (`metrics.rs`).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

mod certs;
mod client;
mod metrics;
mod peers;
mod queued;
mod servers;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Ftp, sink_upload};
use servers::{Role, Server};

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
        Some("serve-relay") => servers::serve(Role::Tokio, Path::new(&args[2])),
        Some("serve-relay-smol") => servers::serve(Role::Smol, Path::new(&args[2])),
        Some("serve-sink") => servers::serve(Role::Sink, Path::new(&args[2])),
        Some("serve-synced-sink") => servers::serve(Role::SyncedSink, Path::new(&args[2])),
        Some("serve-queued") => queued::serve(queued::Mode::parse(&args[2]), Path::new(&args[3])),
        Some("metrics") => metrics::drive(),
        Some("queue") => queued::drive(Path::new(args.get(2).map_or("/var/tmp", String::as_str))),
        _ => drive(&args[1..]),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn drive(args: &[String]) {
    let files = stats::raise_fd_limit();
    let spool = spool_dir();
    let mut roles = vec![Role::Sink, Role::Tokio, Role::Smol];
    for peer in peers::Peer::ALL {
        if peer.prepare() {
            roles.push(Role::Peer(peer));
        }
    }
    if let Some(load) = parse_custom(args) {
        throughput(&[load], &roles, &spool);
        return;
    }
    let loads = [
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
    ];
    throughput(&loads, &roles, &spool);
    println!();
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "server", "p50 ms", "p99 ms", "uploads/s"
    );
    for &role in &roles[1..] {
        latency(role, &spool);
    }
    println!();
    let sessions = if files >= 10_500 {
        10_000
    } else {
        (files as usize).saturating_sub(500)
    };
    println!(
        "{:<10} {:>9} {:>12} {:>12} {:>14}",
        "server", "sessions", "idle RSS MB", "total RSS MB", "bytes/session"
    );
    for role in [Role::Tokio, Role::Smol] {
        idle_sessions(role, sessions, &spool);
    }
    println!();
    println!(
        "{:<10} {:>12} {:>12} {:>14}",
        "server", "upload GiB", "idle RSS MB", "peak over idle"
    );
    for role in [Role::Tokio, Role::Smol] {
        flat_memory(role, 10, &spool);
    }
    let _ = std::fs::remove_dir_all(&spool);
}

struct Outcome {
    elapsed: Duration,
    cpu_seconds: f64,
    /// With a queue: when its last upload was delivered, counted from the
    /// start, and how many were still queued if it was not drained.
    drained: Option<(Duration, usize)>,
}

/// Throughput and CPU of every server for every load, median of three
/// after a warm-up (the first touch of tmpfs memory is slow in a VM).
fn throughput(loads: &[Load], roles: &[Role], spool: &Path) {
    println!(
        "{:<14} {:<9} {:>6} {:>11} {:>8} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "scenario",
        "server",
        "files",
        "bytes/file",
        "seconds",
        "files/s",
        "MB/s",
        "server CPU",
        "CPU s/GiB",
        "vs base"
    );
    for load in loads {
        let mut baseline = None;
        let mut rates = Vec::new();
        for &role in roles {
            run_against(role, *load, spool);
            let mut runs: Vec<Outcome> =
                (0..RUNS).map(|_| run_against(role, *load, spool)).collect();
            runs.sort_by_key(|run| run.elapsed);
            let result = &runs[RUNS / 2];
            let seconds = result.elapsed.as_secs_f64();
            let total = load.files() as f64 * load.size as f64;
            let rate = load.files() as f64 / seconds;
            let base = *baseline.get_or_insert(rate);
            rates.push((role, rate));
            println!(
                "{:<14} {:<9} {:>6} {:>11} {:>8.3} {:>9.0} {:>9.1} {:>10.3} {:>10.3} {:>8.0}%",
                load.name,
                role.label(),
                load.files(),
                load.size,
                seconds,
                rate,
                total / seconds / 1e6,
                result.cpu_seconds,
                result.cpu_seconds / (total / (1u64 << 30) as f64),
                rate / base * 100.0,
            );
        }
        for &(peer, peer_rate) in &rates {
            if !matches!(peer, Role::Peer(_)) {
                continue;
            }
            for &(role, rate) in &rates {
                if matches!(role, Role::Tokio | Role::Smol) {
                    println!(
                        "{:<14} {} / {}: {:.2}x",
                        load.name,
                        role.label(),
                        peer.label(),
                        rate / peer_rate
                    );
                }
            }
        }
    }
}

/// Runs `load` against a fresh `role` server; its CPU time is read around
/// the load.
fn run_against(role: Role, load: Load, spool: &Path) -> Outcome {
    let server = Server::start(role, spool);
    let (addr, pid) = (server.addr, server.pid());
    let cpu_before = stats::cpu_seconds(pid);
    let started = Instant::now();
    runtime().block_on(async {
        let payload = Arc::new(vec![0x5a; 1 << 20]);
        let mut clients = Vec::new();
        for session in 0..load.sessions {
            let payload = payload.clone();
            clients.push(tokio::spawn(async move {
                if matches!(role, Role::Sink | Role::SyncedSink) {
                    for _ in 0..load.files_per_session {
                        sink_upload(addr, load.size, &payload).await;
                    }
                } else {
                    let mut ftp = Ftp::login(addr).await;
                    for file in 0..load.files_per_session {
                        ftp.upload(&format!("s{session}-f{file}"), load.size, &payload)
                            .await;
                    }
                    ftp.quit().await;
                }
            }));
        }
        for client in clients {
            client.await.expect("client task");
        }
    });
    let elapsed = started.elapsed();
    let cpu_seconds = stats::cpu_seconds(pid) - cpu_before;
    let drained = match role {
        Role::Queued(queued::Mode::Queue | queued::Mode::QueueBatch1) => {
            Some(queued::wait_drained(spool, started))
        }
        _ => None,
    };
    drop(server);
    Outcome {
        elapsed,
        cpu_seconds,
        drained,
    }
}

/// One small upload at a time: its latency as the client sees it.
fn latency(role: Role, spool: &Path) {
    let server = Server::start(role, spool);
    let addr = server.addr;
    let mut durations = runtime().block_on(async {
        let payload = vec![0x5a; 4096];
        let mut ftp = Ftp::login(addr).await;
        // Warm up, then measure.
        for i in 0..200 {
            ftp.upload(&format!("warm-{i}"), 4096, &payload).await;
        }
        let mut durations = Vec::with_capacity(2000);
        for i in 0..2000 {
            durations.push(ftp.upload(&format!("lat-{i}"), 4096, &payload).await);
        }
        ftp.quit().await;
        durations
    });
    durations.sort();
    let at = |q: f64| durations[((durations.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let total: f64 = durations.iter().map(Duration::as_secs_f64).sum();
    println!(
        "{:<10} {:>10.3} {:>10.3} {:>10.0}",
        role.label(),
        at(0.5),
        at(0.99),
        durations.len() as f64 / total
    );
}

/// `sessions` logged-in, idle sessions: the server's resident memory.
fn idle_sessions(role: Role, sessions: usize, spool: &Path) {
    let server = Server::start(role, spool);
    let (addr, pid) = (server.addr, server.pid());
    let idle = stats::rss_bytes(pid);
    let total = runtime().block_on(async {
        let mut open = Vec::with_capacity(sessions);
        for batch in (0..sessions).collect::<Vec<_>>().chunks(200) {
            let logins: Vec<_> = batch
                .iter()
                .map(|_| tokio::spawn(Ftp::login(addr)))
                .collect();
            for login in logins {
                open.push(login.await.expect("login"));
            }
        }
        // Let the server settle, then read its memory with every session open.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let total = stats::rss_bytes(pid);
        drop(open);
        total
    });
    println!(
        "{:<10} {:>9} {:>12.1} {:>12.1} {:>14.0}",
        role.label(),
        sessions,
        idle as f64 / 1e6,
        total as f64 / 1e6,
        total.saturating_sub(idle) as f64 / sessions.max(1) as f64
    );
}

/// One upload of `gib` GiB: the server's resident memory, sampled while it
/// receives, against its idle memory.
fn flat_memory(role: Role, gib: u64, spool: &Path) {
    let server = Server::start(role, spool);
    let (addr, pid) = (server.addr, server.pid());
    let idle = stats::rss_bytes(pid);
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(stats::rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    runtime().block_on(async {
        let payload = vec![0x5a; 1 << 20];
        let mut ftp = Ftp::login(addr).await;
        ftp.upload("big.bin", gib << 30, &payload).await;
        ftp.quit().await;
    });
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "{:<10} {:>12} {:>12.1} {:>11.1} MB",
        role.label(),
        gib,
        idle as f64 / 1e6,
        peak.saturating_sub(idle) as f64 / 1e6
    );
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

/// tmpfs when there is one: the figures are about the servers, not the disk.
fn spool_dir() -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_owned()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("ftprelay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("spool dir");
    // vsftpd writes as its local user.
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    dir
}
