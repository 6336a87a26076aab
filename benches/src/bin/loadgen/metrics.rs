//! What `--metrics` costs: small-file throughput of the `ftprelay` command
//! itself (`--discard`, so that the figure is the relay's), without
//! `--metrics` and with it, `/metrics` scraped every 100 ms during the
//! load (150 times Prometheus' usual 15 s), in one run.
//!
//! ```text
//! cargo build --release -p ftprelay-cli -p ftprelay-benches
//! target/release/loadgen metrics
//! ```
//!
//! The `ftprelay` binary is the one next to `loadgen` (same target dir).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{PASSWORD, USER};
use crate::servers::Role;
use crate::{Load, run_against};

/// How often the load's scraper asks for `/metrics`.
const SCRAPE_EVERY: Duration = Duration::from_millis(100);

/// The metrics scenario: 4 KiB files over 32 sessions, without and with
/// `--metrics`, alternated (a warm-up each, then the median of three).
pub(crate) fn drive() {
    let load = Load {
        name: "4 KiB, metrics",
        sessions: 32,
        files_per_session: 200,
        size: 4096,
    };
    let spool = std::env::temp_dir().join(format!("ftprelay-metrics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&spool).expect("spool");
    let roles = [Role::Cli { metrics: false }, Role::Cli { metrics: true }];
    for role in roles {
        let _ = run_against(role, load, &spool);
    }
    let mut runs: Vec<Vec<_>> = vec![Vec::new(), Vec::new()];
    for _ in 0..crate::RUNS {
        for (at, role) in roles.into_iter().enumerate() {
            runs[at].push(run_against(role, load, &spool));
        }
    }
    println!(
        "{:<11} {:>6} {:>9} {:>10} {:>9}",
        "ftprelay", "files", "files/s", "server CPU", "vs off"
    );
    let mut baseline = None;
    for (role, mut outcomes) in roles.into_iter().zip(runs) {
        outcomes.sort_by_key(|run| run.elapsed);
        let median = &outcomes[crate::RUNS / 2];
        let rate = load.files() as f64 / median.elapsed.as_secs_f64();
        let base = *baseline.get_or_insert(rate);
        println!(
            "{:<11} {:>6} {:>9.0} {:>10.3} {:>8.3}x",
            role.label(),
            load.files(),
            rate,
            median.cpu_seconds,
            rate / base
        );
    }
    let _ = std::fs::remove_dir_all(&spool);
}

/// Starts `ftprelay --discard` spooling in `spool`, with `--metrics` and a
/// scraper (a thread, ended with the process) if `metrics`; returns it
/// once it accepts connections.
pub(crate) fn start(spool: &Path, metrics: bool) -> (Child, SocketAddr) {
    let binary = std::env::current_exe()
        .expect("own path")
        .with_file_name("ftprelay");
    let addr = free_port();
    let mut command = Command::new(&binary);
    command
        .args(["--user", &format!("{USER}:{PASSWORD}"), "--discard", "-qq"])
        .args(["--listen", &addr.to_string(), "--spool-dir"])
        .arg(spool)
        .args([
            "--max-connections",
            "20000",
            "--max-connections-per-ip",
            "20000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let metrics_addr = metrics.then(free_port);
    if let Some(metrics_addr) = metrics_addr {
        command.args(["--metrics", &metrics_addr.to_string()]);
    }
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {} (build ftprelay-cli too): {e}", binary.display()));
    wait_listening(addr);
    if let Some(metrics_addr) = metrics_addr {
        wait_listening(metrics_addr);
        let pid = child.id();
        std::thread::spawn(move || scrape_while_alive(metrics_addr, pid));
    }
    (child, addr)
}

/// A port free now on loopback (the relay binds it a moment later).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address")
}

/// Waits (at most 10 s) until `addr` accepts connections.
fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `GET /metrics` every [`SCRAPE_EVERY`] until process `pid` is gone.
fn scrape_while_alive(addr: SocketAddr, pid: u32) {
    while Path::new(&format!("/proc/{pid}")).exists() {
        let scraped = TcpStream::connect(addr).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer)?;
            Ok(answer)
        });
        match scraped {
            Ok(answer) if answer.starts_with(b"HTTP/1.1 200") => {}
            // Killed (a zombie until reaped), or broken: done.
            _ => return,
        }
        std::thread::sleep(SCRAPE_EVERY);
    }
}
