//! The threads that copy data connections: started on demand, kept parked
//! for a while after their job, so that a device sending many small files
//! does not pay a thread's start and teardown for each one (a profile of
//! 4 KiB uploads showed those, not the copy, dominating the thread's time).
//!
//! Not a runtime's blocking pool: that is shared with logins and
//! processors, and long uploads must not starve them. There is no cap on
//! busy threads here: their number is bounded by the connection limit.

use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a finished thread waits for the next job before it ends.
const KEEP_PARKED: Duration = Duration::from_secs(10);
/// At most this many threads wait parked; more end after their job.
const MAX_PARKED: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// Jobs handed to parked threads, and how many parked threads are free.
struct Pool {
    state: Mutex<PoolState>,
    job_ready: Condvar,
}

struct PoolState {
    /// Jobs each already promised to one parked thread.
    queue: VecDeque<Job>,
    /// Parked threads no job is promised to yet.
    free: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        queue: VecDeque::new(),
        free: 0,
    }),
    job_ready: Condvar::new(),
};

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A job runs outside the lock, so a poisoned lock holds consistent
        // state: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `job` on a data thread: a parked one if there is one, else a new
/// one. Fails only when a new thread cannot be started.
pub(crate) fn run(job: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let job: Job = Box::new(job);
    {
        let mut state = POOL.lock();
        if state.free > 0 {
            state.free -= 1;
            state.queue.push_back(job);
            drop(state);
            POOL.job_ready.notify_one();
            return Ok(());
        }
    }
    std::thread::Builder::new()
        .name("ftprelay-data".to_owned())
        .spawn(move || work(job))
        .map(drop)
}

/// A data thread's life: its first job, then each job it is given while
/// parked, until none comes for `KEEP_PARKED` or enough others are parked.
fn work(first: Job) {
    let mut job = first;
    loop {
        job();
        let mut state = POOL.lock();
        if state.free >= MAX_PARKED {
            return;
        }
        state.free += 1;
        job = loop {
            // Any parked thread may take a queued job: each one in the queue
            // was counted off `free`, so there are never more jobs than
            // parked threads to run them.
            if let Some(next) = state.queue.pop_front() {
                break next;
            }
            let (next_state, waited) = POOL
                .job_ready
                .wait_timeout(state, KEEP_PARKED)
                .unwrap_or_else(|e| e.into_inner());
            state = next_state;
            if waited.timed_out() && state.queue.is_empty() {
                state.free -= 1;
                return;
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier};

    use super::*;

    /// Bounds a wait that only a broken pool would exhaust.
    const TOO_LONG: Duration = Duration::from_secs(30);

    #[test]
    fn every_job_runs_once_and_returns_its_result() {
        let (results, received) = mpsc::channel();
        for round in 0..200u32 {
            let results = results.clone();
            run(move || results.send(round).expect("receiver alive")).expect("thread");
            assert_eq!(received.recv_timeout(TOO_LONG), Ok(round));
        }
    }

    #[test]
    fn jobs_that_wait_for_each_other_run_at_once() {
        // Eight uploads in flight at the same moment must each have a thread:
        // a pool that queued a job behind a busy one would never pass the
        // barrier.
        for _ in 0..20 {
            let barrier = Arc::new(Barrier::new(8));
            let (done, finished) = mpsc::channel();
            for _ in 0..8 {
                let barrier = barrier.clone();
                let done = done.clone();
                run(move || {
                    barrier.wait();
                    done.send(()).expect("receiver alive");
                })
                .expect("thread");
            }
            for _ in 0..8 {
                finished.recv_timeout(TOO_LONG).expect("every job finishes");
            }
        }
    }
}
