//! Which deliveries run next: a pure scheduler, told the time, so that
//! its choices are tested without a clock.
//!
//! A job is one destination of one upload. Due jobs start while there are
//! free slots, globally and per destination; users take turns, so that
//! one user's backlog does not starve the others, and within a user the
//! oldest due job goes first.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// One destination of one upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Job {
    /// The upload's id.
    pub(crate) id: String,
    /// Which of its destinations.
    pub(crate) index: usize,
}

/// How many deliveries may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// In all. Sixteen.
    pub total: usize,
    /// To any one destination. Four: a mail server or a webhook is not
    /// flooded by a backlog.
    pub per_destination: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            total: 16,
            per_destination: 4,
        }
    }
}

/// The jobs waiting (with their due times) and running.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Per user: `(due, job, destination)`, earliest first.
    waiting: HashMap<Vec<u8>, BTreeSet<(u64, Job, String)>>,
    /// Users in the order they get their next turn.
    turns: VecDeque<Vec<u8>>,
    /// Running jobs per destination name.
    running: HashMap<String, usize>,
    total_running: usize,
}

/// A job picked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// What to run.
    pub(crate) job: Job,
    /// Its user.
    pub(crate) user: Vec<u8>,
    /// Its destination's name.
    pub(crate) destination: String,
}

/// How many waiting jobs of one user are looked at per turn: past the
/// first few, a user's jobs are all for destinations at their limit.
const LOOK_AHEAD: usize = 64;

impl Schedule {
    /// Adds `job` of `user`, for `destination`, due at `due` (µs since 1970).
    pub(crate) fn add(&mut self, user: &[u8], job: Job, destination: &str, due: u64) {
        let waiting = self.waiting.entry(user.to_vec()).or_default();
        if waiting.is_empty() {
            self.turns.push_back(user.to_vec());
        }
        waiting.insert((due, job, destination.to_owned()));
    }

    /// Removes every waiting job of upload `id` (dropped, or failed).
    pub(crate) fn remove_upload(&mut self, user: &[u8], id: &str) {
        if let Some(waiting) = self.waiting.get_mut(user) {
            waiting.retain(|(_, job, _)| job.id != id);
        }
    }

    /// Makes every waiting job of upload `id` (all uploads if `None`) due
    /// now: `ftprelay queue retry`.
    pub(crate) fn hurry(&mut self, id: Option<&str>) {
        for waiting in self.waiting.values_mut() {
            let hurried: Vec<_> = waiting
                .iter()
                .filter(|(due, job, _)| *due > 0 && id.is_none_or(|id| job.id == id))
                .cloned()
                .collect();
            for entry in hurried {
                waiting.remove(&entry);
                waiting.insert((0, entry.1, entry.2));
            }
        }
    }

    /// The jobs to start at `now` within `limits`; each counts as running
    /// until [`Schedule::finished`].
    pub(crate) fn start(&mut self, now: u64, limits: Limits) -> Vec<Start> {
        let mut started = Vec::new();
        let mut idle_turns = 0;
        while self.total_running < limits.total && idle_turns < self.turns.len() {
            let Some(user) = self.turns.pop_front() else {
                break;
            };
            let waiting = self.waiting.entry(user.clone()).or_default();
            let pick = waiting
                .iter()
                .take(LOOK_AHEAD)
                .take_while(|(due, _, _)| *due <= now)
                .find(|(_, _, destination)| {
                    self.running.get(destination).copied().unwrap_or(0) < limits.per_destination
                })
                .cloned();
            match pick {
                Some(entry) => {
                    waiting.remove(&entry);
                    let (_, job, destination) = entry;
                    *self.running.entry(destination.clone()).or_default() += 1;
                    self.total_running += 1;
                    started.push(Start {
                        job,
                        user: user.clone(),
                        destination,
                    });
                    idle_turns = 0;
                }
                None => idle_turns += 1,
            }
            if waiting.is_empty() {
                self.waiting.remove(&user);
            } else {
                self.turns.push_back(user);
            }
        }
        started
    }

    /// A job of `destination` ended.
    pub(crate) fn finished(&mut self, destination: &str) {
        if let Some(count) = self.running.get_mut(destination) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.running.remove(destination);
            }
        }
        self.total_running = self.total_running.saturating_sub(1);
    }

    /// When the earliest waiting job is due (µs since 1970).
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.waiting
            .values()
            .filter_map(|waiting| waiting.first().map(|(due, _, _)| *due))
            .min()
    }

    /// How many jobs run.
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.total_running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, index: usize) -> Job {
        Job {
            id: id.to_owned(),
            index,
        }
    }

    const LIMITS: Limits = Limits {
        total: 4,
        per_destination: 2,
    };

    #[test]
    fn users_take_turns_and_the_oldest_job_of_each_goes_first() {
        let mut schedule = Schedule::default();
        for n in 0..10 {
            schedule.add(b"camera", job(&format!("a{n}"), 0), &format!("mail{n}"), n);
        }
        schedule.add(b"scanner", job("b0", 0), "http", 5);
        schedule.add(b"scanner", job("b1", 0), "s3", 3);
        let started = schedule.start(100, LIMITS);
        let ids: Vec<&str> = started.iter().map(|s| s.job.id.as_str()).collect();
        assert_eq!(ids, ["a0", "b1", "a1", "b0"]);
        assert!(
            schedule.start(100, LIMITS).is_empty(),
            "all four slots taken"
        );
        schedule.finished("http");
        let next = schedule.start(100, LIMITS);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].job.id, "a2");
    }

    #[test]
    fn a_destination_at_its_limit_does_not_hold_up_the_others() {
        let mut schedule = Schedule::default();
        for n in 0..5 {
            schedule.add(b"u", job(&format!("m{n}"), 0), "mail", n);
        }
        schedule.add(b"u", job("h", 1), "http", 9);
        let started: Vec<String> = schedule
            .start(100, LIMITS)
            .into_iter()
            .map(|s| s.job.id)
            .collect();
        assert_eq!(started, ["m0", "m1", "h"]);
    }

    #[test]
    fn jobs_wait_until_due_and_retry_hurries_them() {
        let mut schedule = Schedule::default();
        schedule.add(b"u", job("x", 0), "mail", 1_000);
        schedule.add(b"u", job("y", 0), "mail", 2_000);
        assert!(schedule.start(999, LIMITS).is_empty());
        assert_eq!(schedule.next_due(), Some(1_000));
        schedule.hurry(Some("y"));
        assert_eq!(schedule.next_due(), Some(0));
        let started = schedule.start(999, LIMITS);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].job.id, "y");
        schedule.remove_upload(b"u", "x");
        assert_eq!(schedule.next_due(), None);
        assert_eq!(schedule.running(), 1);
    }
}
