//! Counts heap allocations per command line in a logged-in session's
//! steady state: the figure criterion cannot give.
//!
//! ```text
//! cargo run --release -p ftprelay-benches --bin allocations
//! ```

#![allow(clippy::print_stdout)] // a command-line tool
// A global allocator is unsafe to implement; this one only forwards.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proto::{Command, Config, Input, LoginVerdict, Output, Session};

/// The system allocator, counting the allocations it makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Lines measured one kind at a time.
const LINES: [&str; 6] = [
    "NOOP",
    "TYPE I",
    "PWD",
    "CWD /",
    "SIZE /NVR01/snapshot_0001.jpg",
    "STOR /NVR01/2024-05-01/ch1/snapshot_0001.jpg",
];

/// Repetitions per line after the warm-up.
const REPEATS: u64 = 10_000;

fn main() {
    let lines: Vec<bytes::Bytes> = LINES
        .iter()
        .map(|line| bytes::Bytes::from_static(line.as_bytes()))
        .collect();
    println!("{:<48} {:>14}", "parse only", "allocs/line");
    for line in &lines {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..REPEATS {
            std::hint::black_box(Command::parse(std::hint::black_box(line)).ok());
        }
        let per_line = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / REPEATS as f64;
        println!("{:<48} {:>14.2}", String::from_utf8_lossy(line), per_line);
    }

    println!();
    println!(
        "{:<48} {:>14}",
        "session (line in, reply out)", "allocs/line"
    );
    let now = Instant::now();
    for line in LINES.iter().take(4) {
        let mut session = logged_in(now);
        let wire = format!("{line}\r\n");
        // Warm-up: buffers reach their steady size.
        feed(&mut session, now, wire.as_bytes(), 100);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        feed(&mut session, now, wire.as_bytes(), REPEATS);
        let per_line = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / REPEATS as f64;
        println!("{line:<48} {per_line:>14.2}");
    }
}

/// A session past greeting and login.
fn logged_in(now: Instant) -> Session {
    let local: SocketAddr = "127.0.0.1:2121".parse().expect("address");
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let mut session = Session::new(Arc::new(Config::default()), now, local, peer);
    feed(&mut session, now, b"USER camera\r\nPASS secret\r\n", 1);
    session
}

/// Feeds `wire` `times` times, answering logins and draining replies.
fn feed(session: &mut Session, now: Instant, wire: &[u8], times: u64) {
    for _ in 0..times {
        session.handle(now, Input::ControlBytes(wire));
        loop {
            match session.poll_output() {
                Output::CheckLogin(_) => {
                    session.handle(now, Input::LoginChecked(LoginVerdict::ACCEPTED))
                }
                Output::Reply(reply) => {
                    std::hint::black_box(reply);
                }
                Output::Wait(_) | Output::Finished => break,
                _ => {}
            }
        }
    }
}
