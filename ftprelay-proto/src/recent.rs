//! Uploads a user made a moment ago, seen from the user's other sessions.
//!
//! Clients with several connections (rclone, by default) upload on one and
//! check the upload (a listing, SIZE, MDTM) on another. In the devices
//! profile each session knows only its own uploads, so the check fails and
//! the client uploads again. A relay keeps one [`RecentUploads`] for all
//! its sessions: a session records each upload it received, and answers
//! for the same user's uploads of the last
//! [`crate::Config::recent_upload_window`] as if they were its own. Never
//! another user's, never after the window, never anything stored.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The uploads of the last moments, per user, shared by a relay's sessions.
/// Time comes in as an argument, as everywhere in this crate.
#[derive(Debug)]
pub struct RecentUploads {
    window: Duration,
    max_entries: usize,
    users: Mutex<Uploads>,
    /// The last session number given out.
    sessions: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct Uploads {
    by_user: HashMap<Bytes, VecDeque<RecentUpload>>,
    entries: usize,
}

/// One upload, as other sessions of its user see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecentUpload {
    /// The virtual path (components).
    pub(crate) path: Vec<Bytes>,
    pub(crate) size: u64,
    pub(crate) received: Instant,
    /// The session that received it ([`RecentUploads::register`]).
    pub(crate) owner: u64,
}

impl RecentUploads {
    /// Uploads are seen for `window` after they arrived; at most
    /// `max_entries` are kept in all (the oldest go first).
    pub fn new(window: Duration, max_entries: usize) -> Self {
        Self {
            window,
            max_entries,
            users: Mutex::new(Uploads::default()),
            sessions: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A number for a session that shares its uploads here, so that it can
    /// tell its own from the others'.
    pub(crate) fn register(&self) -> u64 {
        self.sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// `user` received `upload`.
    pub(crate) fn record(&self, user: &[u8], upload: RecentUpload) {
        if self.window.is_zero() || self.max_entries == 0 {
            return;
        }
        let now = upload.received;
        let mut uploads = self.lock();
        uploads.expire(now, self.window);
        let list = uploads
            .by_user
            .entry(Bytes::copy_from_slice(user))
            .or_default();
        // One entry per path: a new upload replaces the one before.
        let before = list.len();
        list.retain(|known| known.path != upload.path);
        let replaced = before - list.len();
        list.push_back(upload);
        uploads.entries = uploads.entries + 1 - replaced;
        while uploads.entries > self.max_entries && uploads.drop_oldest() {}
    }

    /// Visits `user`'s uploads of the window before `now` made by other
    /// sessions than `me`, oldest first, without copying them.
    pub(crate) fn visit(
        &self,
        user: &[u8],
        me: u64,
        now: Instant,
        mut visit: impl FnMut(&RecentUpload),
    ) {
        let uploads = self.lock();
        let horizon = now.checked_sub(self.window);
        let Some(list) = uploads.by_user.get(user) else {
            return;
        };
        list.iter()
            .filter(|upload| upload.owner != me)
            .filter(|upload| horizon.is_none_or(|horizon| upload.received > horizon))
            .for_each(&mut visit);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Uploads> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Uploads {
    /// Forgets what is older than `window` before `now`.
    fn expire(&mut self, now: Instant, window: Duration) {
        let Some(horizon) = now.checked_sub(window) else {
            return;
        };
        let mut removed = 0;
        self.by_user.retain(|_, list| {
            while list
                .front()
                .is_some_and(|upload| upload.received <= horizon)
            {
                list.pop_front();
                removed += 1;
            }
            !list.is_empty()
        });
        self.entries -= removed;
    }

    /// Forgets the oldest upload of all; `false` when there is none.
    fn drop_oldest(&mut self) -> bool {
        let oldest = self
            .by_user
            .iter()
            .filter_map(|(user, list)| list.front().map(|u| (u.received, user.clone())))
            .min();
        let Some((_, user)) = oldest else {
            return false;
        };
        if let Some(list) = self.by_user.get_mut(&user) {
            list.pop_front();
            if list.is_empty() {
                self.by_user.remove(&user);
            }
        }
        self.entries -= 1;
        true
    }
}
