//! The end-to-end load generator: the relay (on tokio and on smol, with a
//! processor that discards), every peer a user would pick instead
//! (vsftpd, Pure-FTPd, ProFTPD, pyftpdlib, and unFTP with
//! `LOADGEN_UNFTP=1`; `peers/`), and a plain TCP-to-file copy (the
//! baseline), measured in the same run on the same machine. Each server
//! runs in a process of its own, so that its CPU time and memory are its
//! own; the spool is on tmpfs.
//!
//! ```text
//! cargo run --release -p ftprelay-benches --bin loadgen
//! cargo run --release -p ftprelay-benches --bin loadgen -- --files N --size BYTES --sessions C [--tls]
//! LOADGEN_ONLY=tokio,vsftpd cargo run --release -p ftprelay-benches --bin loadgen -- --files N ...
//! cargo run --release -p ftprelay-benches --bin loadgen -- latency    # or: delivery
//! ```
//!
//! Without arguments it prints every figure of `benches/README.md`, then
//! the whole table in Markdown: one 1 GiB upload; 4 KiB files at 1, 8, 32,
//! 128 and 512 sessions; the same over FTPS (`PROT P`, TLS 1.3,
//! AES-128-GCM) with the AES-GCM ceiling of `openssl speed`; the latency
//! of one small upload; 10,000 idle logged-in sessions, plain and FTPS;
//! the memory while receiving 10 GiB; and what `--dir` and `--queue` cost
//! against `--discard`. Each figure is the median of three runs after a
//! warm-up.
//!
//! `loadgen queue [DIR]` measures store and forward on a real disk
//! (`queued.rs`), `loadgen metrics` what `--metrics` costs (`metrics.rs`).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

mod certs;
mod client;
mod metrics;
mod peers;
mod queued;
mod report;
mod servers;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Ftp, Tls, sink_upload};
use peers::Peer;
use report::{Figure, Report};
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
        Some("serve-relay-tls") => servers::serve(Role::TokioTls, Path::new(&args[2])),
        Some("serve-relay-smol-tls") => servers::serve(Role::SmolTls, Path::new(&args[2])),
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

/// The latency client's runtime: one session needs no second thread, and
/// waking one would add its hop to every reply measured.
fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn drive(args: &[String]) {
    let files = stats::raise_fd_limit();
    let spool = spool_dir();
    let tls_files = certs::generate(&spool.join("tls"));
    let peers = peer_roles();
    let mut plain: Vec<Role> = vec![Role::Sink, Role::Tokio, Role::Smol];
    plain.extend(peers.iter().map(|&(plain, _)| plain));
    let mut protected = vec![Role::TokioTls, Role::SmolTls];
    protected.extend(peers.iter().filter_map(|&(_, tls)| tls));
    let mut report = Report::default();
    match args.first().map(String::as_str) {
        Some("latency") => {
            latencies(&mut report, &only(plain[1..].to_vec()), &spool);
            report.print();
            return;
        }
        Some("delivery") => {
            delivery(&mut report, &spool);
            report.print();
            return;
        }
        _ => {}
    }
    if let Some((load, tls)) = parse_custom(args) {
        let roles = only(if tls { protected } else { plain });
        throughput(&mut report, &[load], &roles, &spool);
        report.print();
        return;
    }
    let big = Load {
        name: "1 GiB upload",
        sessions: 1,
        files_per_session: 1,
        size: 1 << 30,
    };
    throughput(&mut report, &[big], &plain, &spool);
    // 4 KiB files as sessions grow; 32 sessions is the small-file figure.
    let small: Vec<Load> = SCALING
        .iter()
        .map(|&sessions| Load {
            name: scaling_name(sessions),
            sessions,
            files_per_session: SMALL_FILES.div_ceil(sessions),
            size: 4096,
        })
        .collect();
    throughput(&mut report, &small, &plain, &spool);
    // FTPS: the relay and every peer that speaks it.
    let tls_loads = [
        Load {
            name: "FTPS 1 GiB upload",
            ..big
        },
        Load {
            name: "FTPS 4 KiB files, 32 sessions",
            sessions: 32,
            files_per_session: 200,
            size: 4096,
        },
    ];
    throughput(&mut report, &tls_loads, &protected, &spool);
    if let Some(ceiling) = stats::aes_gcm_ceiling() {
        report.note(format!(
            "AES-128-GCM ceiling (`openssl speed -evp aes-128-gcm`, 16 KiB blocks, one core): {:.0} MB/s",
            ceiling / 1e6
        ));
        for role in [Role::TokioTls, Role::SmolTls] {
            if let Some(rate) = report.value("FTPS 1 GiB upload, MB/s", role.column()) {
                report.note(format!(
                    "{} FTPS 1 GiB upload: {:.0} % of that ceiling",
                    role.column(),
                    rate * 1e6 / ceiling * 100.0
                ));
            }
        }
    }
    latencies(&mut report, &plain[1..], &spool);
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
    for role in [Role::Tokio, Role::Smol, Role::TokioTls, Role::SmolTls] {
        guarded(&mut report, role.label(), "the idle sessions", |report| {
            idle_sessions(report, role, sessions, &spool);
        });
    }
    println!();
    println!(
        "{:<10} {:>12} {:>12} {:>14}",
        "server", "upload GiB", "idle RSS MB", "peak over idle"
    );
    // On disk: 10 GiB more on tmpfs would be 10 GiB more of memory, and
    // the figure is the server's, not the spool's.
    let disk_spool = spool_under(&std::env::temp_dir());
    for role in [Role::Tokio, Role::Smol] {
        guarded(&mut report, role.label(), "the 10 GiB upload", |report| {
            flat_memory(report, role, 10, &disk_spool);
        });
    }
    guarded(&mut report, "tokio", "the delivery runs", |report| {
        delivery(report, &spool);
    });
    drop(tls_files);
    report.print();
}

/// Concurrent sessions of the scaling scenario (4 KiB files).
const SCALING: [usize; 5] = [1, 8, 32, 128, 512];

/// Files of each scaling run, whatever the sessions.
const SMALL_FILES: usize = 6400;

fn scaling_name(sessions: usize) -> &'static str {
    match sessions {
        1 => "4 KiB files, 1 session",
        8 => "4 KiB files, 8 sessions",
        32 => "4 KiB files, 32 sessions",
        128 => "4 KiB files, 128 sessions",
        _ => "4 KiB files, 512 sessions",
    }
}

/// The peers this machine can run: each plain, and with FTPS where it
/// has it.
fn peer_roles() -> Vec<(Role, Option<Role>)> {
    Peer::ALL
        .into_iter()
        .filter(|peer| peer.prepare())
        .map(|peer| {
            let tls = peer.supports_tls().then_some(Role::PeerTls(peer));
            (Role::Peer(peer), tls)
        })
        .collect()
}

/// What `--discard`, `--dir` (an atomic rename into a directory) and
/// `--queue` cost each upload: 4 KiB files over 32 sessions, all on tmpfs,
/// the relay on tokio delivering as `ftprelay` does.
fn delivery(report: &mut Report, spool: &Path) {
    let load = Load {
        name: "delivery",
        sessions: 32,
        files_per_session: 200,
        size: 4096,
    };
    println!();
    println!(
        "{:<10} {:>9} {:>10} {:>10}",
        "delivery", "files/s", "CPU µs/file", "vs discard"
    );
    let mut discard = None;
    for mode in [queued::Mode::Direct, queued::Mode::Dir, queued::Mode::Queue] {
        let role = Role::Queued(mode);
        let (load, median) = median_run(role, load, spool);
        let rate = load.files() as f64 / median.elapsed.as_secs_f64();
        let base = *discard.get_or_insert(rate);
        let per_file = median.cpu_seconds / load.files() as f64 * 1e6;
        println!(
            "{:<10} {:>9.0} {:>10.1} {:>9.2}x",
            mode.delivery_label(),
            rate,
            per_file,
            rate / base
        );
        let row = format!(
            "delivery {}, 4 KiB × 32 sessions, files/s",
            mode.delivery_label()
        );
        report.set(&row, "tokio", Figure::higher(rate, 0));
        let row = format!("delivery {}, server CPU µs/file", mode.delivery_label());
        report.set(&row, "tokio", Figure::lower(per_file, 1));
    }
}

/// A warm-up run, then the median of [`RUNS`]. A server whose warm-up
/// took over [`LONG_RUN`] (unFTP answers each upload 40 ms late) gets
/// fewer files a session in the measured runs, so that the whole table
/// stays within minutes; its rate is the same measure. Returns the load
/// measured with its outcome.
fn median_run(role: Role, load: Load, spool: &Path) -> (Load, Outcome) {
    let warm_up = run_against(role, load, spool);
    let mut load = load;
    if warm_up.elapsed > LONG_RUN {
        let scale = LONG_RUN.as_secs_f64() / warm_up.elapsed.as_secs_f64();
        load.files_per_session = ((load.files_per_session as f64 * scale) as usize).max(1);
    }
    let mut runs: Vec<Outcome> = (0..RUNS).map(|_| run_against(role, load, spool)).collect();
    runs.sort_by_key(|run| run.elapsed);
    (load, runs.swap_remove(RUNS / 2))
}

/// The longest a measured run should take.
const LONG_RUN: Duration = Duration::from_secs(8);

struct Outcome {
    elapsed: Duration,
    cpu_seconds: f64,
    /// With a queue: when its last upload was delivered, counted from the
    /// start, and how many were still queued if it was not drained.
    drained: Option<(Duration, usize)>,
}

/// Throughput and CPU of every server for every load, median of three
/// after a warm-up (the first touch of tmpfs memory is slow in a VM).
fn throughput(report: &mut Report, loads: &[Load], roles: &[Role], spool: &Path) {
    println!(
        "{:<30} {:<9} {:>6} {:>11} {:>8} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "scenario",
        "server",
        "files",
        "bytes/file",
        "seconds",
        "files/s",
        "MB/s",
        "server CPU",
        "CPU s/GiB",
        "vs first"
    );
    for load in loads {
        let mut first = None;
        for &role in roles {
            // A peer that fails under the load (a refused connection, a
            // port it cannot bind) loses its figure, not the whole table.
            let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                median_run(role, *load, spool)
            }));
            let Ok((load, result)) = measured else {
                println!(
                    "{:<30} {:<9} failed (its panic is above)",
                    load.name,
                    role.label()
                );
                report.note(format!(
                    "{} failed in \"{}\": see the run's output",
                    role.label(),
                    load.name
                ));
                continue;
            };
            let seconds = result.elapsed.as_secs_f64();
            let total = load.files() as f64 * load.size as f64;
            let rate = load.files() as f64 / seconds;
            let base = *first.get_or_insert(rate);
            let per_gib = result.cpu_seconds / (total / (1u64 << 30) as f64);
            println!(
                "{:<30} {:<9} {:>6} {:>11} {:>8.3} {:>9.0} {:>9.1} {:>10.3} {:>10.3} {:>8.0}%",
                load.name,
                role.label(),
                load.files(),
                load.size,
                seconds,
                rate,
                total / seconds / 1e6,
                result.cpu_seconds,
                per_gib,
                rate / base * 100.0,
            );
            let column = role.column();
            if load.files() == 1 {
                report.set(
                    &format!("{}, MB/s", load.name),
                    column,
                    Figure::higher(total / seconds / 1e6, 0),
                );
                report.set(
                    &format!("{}, server CPU s/GiB", load.name),
                    column,
                    Figure::lower(per_gib, 2),
                );
            } else {
                report.set(
                    &format!("{}, files/s", load.name),
                    column,
                    Figure::higher(rate, 0),
                );
                report.set(
                    &format!("{}, server CPU µs/file", load.name),
                    column,
                    Figure::lower(result.cpu_seconds / load.files() as f64 * 1e6, 1),
                );
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
    let tls = role
        .is_tls()
        .then(|| Tls::trusting(&spool.join("tls/cert.pem")));
    let runtime = runtime();
    let sessions = runtime.block_on(async {
        let payload = Arc::new(vec![0x5a; 1 << 20]);
        let mut clients = Vec::new();
        for session in 0..load.sessions {
            let (payload, tls) = (payload.clone(), tls.clone());
            clients.push(tokio::spawn(async move {
                if matches!(role, Role::Sink | Role::SyncedSink) {
                    for _ in 0..load.files_per_session {
                        sink_upload(addr, load.size, &payload).await;
                    }
                    None
                } else {
                    let mut ftp = Ftp::connect(addr, tls.as_ref()).await;
                    for file in 0..load.files_per_session {
                        ftp.upload(&format!("s{session}-f{file}"), load.size, &payload)
                            .await;
                    }
                    Some(ftp)
                }
            }));
        }
        let mut sessions = Vec::with_capacity(clients.len());
        for client in clients {
            sessions.extend(client.await.expect("client task"));
        }
        sessions
    });
    let elapsed = started.elapsed();
    // Read while every session is still logged in: a forking server's
    // session processes are then alive, and counted. Once they have
    // quit, their CPU time reaches the server's only as they are reaped
    // (vsftpd's 1 GiB upload once read as 0.05 s).
    let cpu_seconds = stats::cpu_seconds(pid) - cpu_before;
    runtime.block_on(async {
        for ftp in sessions {
            ftp.quit().await;
        }
    });
    let drained = match role {
        Role::Queued(mode) if mode.is_queued() => Some(queued::wait_drained(spool, started)),
        _ => None,
    };
    drop(server);
    Outcome {
        elapsed,
        cpu_seconds,
        drained,
    }
}

/// `LOADGEN_ONLY=tokio,vsftpd`: those of `roles` only (to profile one).
/// A list that names none of them is a usage error, not an empty table.
fn only(mut roles: Vec<Role>) -> Vec<Role> {
    let Ok(only) = std::env::var("LOADGEN_ONLY") else {
        return roles;
    };
    let known: Vec<&str> = roles.iter().map(|role| role.column()).collect();
    roles.retain(|role| only.split(',').any(|label| label.trim() == role.column()));
    if roles.is_empty() {
        eprintln!(
            "loadgen: LOADGEN_ONLY={only:?} names no server here; use some of {}",
            known.join(",")
        );
        std::process::exit(2);
    }
    roles
}

/// The latency of one small upload on each of `roles`.
fn latencies(report: &mut Report, roles: &[Role], spool: &Path) {
    println!();
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "server", "p50 ms", "p99 ms", "uploads/s"
    );
    for &role in roles {
        guarded(report, role.label(), "the latency run", |report| {
            latency(report, role, spool);
        });
    }
}

/// Runs `measure`; if it panics (a server that fails under the load), the
/// run goes on and the table says that `server` failed in `what`.
fn guarded(report: &mut Report, server: &str, what: &str, measure: impl FnOnce(&mut Report)) {
    let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| measure(&mut *report)));
    if measured.is_err() {
        report.note(format!("{server} failed in {what}: see the run's output"));
    }
}

/// One small upload at a time: its latency as the client sees it.
fn latency(report: &mut Report, role: Role, spool: &Path) {
    let server = Server::start(role, spool);
    let addr = server.addr;
    let mut durations = one_thread_runtime().block_on(async {
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
    report.set(
        "one small upload, p50 ms",
        role.column(),
        Figure::lower(at(0.5), 3),
    );
    report.set(
        "one small upload, p99 ms",
        role.column(),
        Figure::lower(at(0.99), 3),
    );
    println!(
        "{:<10} {:>10.3} {:>10.3} {:>10.0}",
        role.label(),
        at(0.5),
        at(0.99),
        durations.len() as f64 / total
    );
}

/// `sessions` logged-in, idle sessions: the server's resident memory.
fn idle_sessions(report: &mut Report, role: Role, sessions: usize, spool: &Path) {
    let server = Server::start(role, spool);
    let (addr, pid) = (server.addr, server.pid());
    let idle = stats::rss_bytes(pid);
    let tls = role
        .is_tls()
        .then(|| Tls::trusting(&spool.join("tls/cert.pem")));
    let total = runtime().block_on(async {
        let mut open = Vec::with_capacity(sessions);
        for batch in (0..sessions).collect::<Vec<_>>().chunks(200) {
            let logins: Vec<_> = batch
                .iter()
                .map(|_| {
                    let tls = tls.clone();
                    tokio::spawn(async move { Ftp::connect(addr, tls.as_ref()).await })
                })
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
    let kind = if role.is_tls() { "FTPS" } else { "plain" };
    report.set(
        &format!("{sessions} idle {kind} sessions, total RSS MB"),
        role.column(),
        Figure::lower(total as f64 / 1e6, 1),
    );
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
fn flat_memory(report: &mut Report, role: Role, gib: u64, spool: &Path) {
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
    report.set(
        &format!("RSS over idle while receiving {gib} GiB, MB"),
        role.column(),
        Figure::lower(peak.saturating_sub(idle) as f64 / 1e6, 1),
    );
    println!(
        "{:<10} {:>12} {:>12.1} {:>11.1} MB",
        role.label(),
        gib,
        idle as f64 / 1e6,
        peak.saturating_sub(idle) as f64 / 1e6
    );
}

/// `--files N --size BYTES --sessions C [--tls]`: one load against every
/// server (with `--tls`, every FTPS server).
fn parse_custom(args: &[String]) -> Option<(Load, bool)> {
    if args.is_empty() {
        return None;
    }
    let mut load = Load {
        name: "custom",
        sessions: 1,
        files_per_session: 1,
        size: 4096,
    };
    let (mut files, mut tls) = (1, false);
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        if flag == "--tls" {
            tls = true;
            continue;
        }
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
    Some((load, tls))
}

fn usage(flag: &str) -> ! {
    eprintln!(
        "loadgen: bad argument {flag}; use [--files N] [--size BYTES] [--sessions C] [--tls]"
    );
    std::process::exit(2);
}

/// tmpfs when there is one: the figures are about the servers, not the disk.
fn spool_dir() -> Spool {
    let base = Path::new("/dev/shm");
    if base.is_dir() {
        spool_under(base)
    } else {
        spool_under(&std::env::temp_dir())
    }
}

/// A spool of this run's own under `base`, once the spools of runs that
/// were killed are gone (on tmpfs, each holds memory until removed).
fn spool_under(base: &Path) -> Spool {
    const PREFIX: &str = "ftprelay-bench-";
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.strip_prefix(PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            eprintln!(
                "loadgen: removing {}, left by a run that was killed",
                entry.path().display()
            );
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("spool dir");
    // vsftpd writes as its local user.
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    Spool(dir)
}

/// A run's spool directory, removed with what is in it when dropped.
struct Spool(PathBuf);

impl std::ops::Deref for Spool {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
