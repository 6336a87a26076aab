//! How full the queue is, and whether it takes one more upload.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ftprelay_proto::ProcessError;

/// The bounds of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The most bytes of uploads kept. Half the file system's free space
    /// when the queue opens, by default.
    pub max_bytes: u64,
    /// The most uploads kept. A quarter of the file system's free inodes
    /// (an upload takes three), at most a million, by default.
    pub max_files: u64,
}

impl Capacity {
    /// The default bounds for a queue at `dir`, from its file system's
    /// free space and inodes now; `used` bytes are already the queue's.
    pub fn for_dir(dir: &Path, used: u64) -> std::io::Result<Self> {
        let stat = rustix::fs::statvfs(dir)?;
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        let inodes = if stat.f_files == 0 {
            // File systems without an inode count (btrfs) report 0.
            u64::MAX
        } else {
            stat.f_favail
        };
        Ok(Self {
            max_bytes: (free / 2).saturating_add(used),
            max_files: (inodes / 4).min(1_000_000),
        })
    }
}

/// The queue's contents, counted, against its [`Capacity`].
#[derive(Debug)]
pub(crate) struct Usage {
    capacity: std::sync::OnceLock<Capacity>,
    bytes: AtomicU64,
    files: AtomicU64,
    refused: AtomicU64,
    /// When the oldest upload waiting for delivery was received, in
    /// microseconds since 1970; 0 when none waits. Set by the worker.
    oldest_us: AtomicU64,
}

impl Usage {
    pub(crate) fn new() -> Self {
        Self {
            capacity: std::sync::OnceLock::new(),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            oldest_us: AtomicU64::new(0),
        }
    }

    /// Sets the bounds (once, after the uploads on disk were counted).
    pub(crate) fn set_capacity(&self, capacity: Capacity) {
        let _ = self.capacity.set(capacity);
    }

    fn capacity(&self) -> Capacity {
        self.capacity.get().copied().unwrap_or(Capacity {
            max_bytes: u64::MAX,
            max_files: u64::MAX,
        })
    }

    /// Whether the queue is full: [`Usage::admit`] would refuse.
    pub(crate) fn is_full(&self) -> bool {
        let capacity = self.capacity();
        self.bytes() >= capacity.max_bytes || self.files() >= capacity.max_files
    }

    /// Whether one more upload may start: not when the queue is full.
    pub(crate) fn admit(&self) -> Result<(), ProcessError> {
        let capacity = self.capacity();
        let (bytes, files) = (self.bytes(), self.files());
        if self.is_full() {
            return Err(self.refuse(format!(
                "the queue is full ({files} uploads, {bytes} bytes; at most {}, {} bytes)",
                capacity.max_files, capacity.max_bytes
            )));
        }
        Ok(())
    }

    /// Counts an upload of `size` bytes in, if it fits.
    pub(crate) fn reserve(&self, size: u64) -> Result<(), ProcessError> {
        let capacity = self.capacity();
        let fits = |bytes: u64| bytes.checked_add(size).filter(|b| *b <= capacity.max_bytes);
        let mut bytes = self.bytes();
        loop {
            let Some(after) = fits(bytes) else {
                return Err(self.refuse(format!(
                    "the queue is full: {size} more bytes would pass its {} bytes",
                    capacity.max_bytes
                )));
            };
            match self.bytes.compare_exchange_weak(
                bytes,
                after,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => bytes = now,
            }
        }
        if self.files.fetch_add(1, Ordering::Relaxed) >= capacity.max_files {
            self.remove(size);
            return Err(self.refuse(format!("the queue is full: {} uploads", capacity.max_files)));
        }
        Ok(())
    }

    fn refuse(&self, reason: String) -> ProcessError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason, "upload refused: 452");
        ProcessError::storage_full(reason)
    }

    /// Counts an upload found on disk.
    pub(crate) fn add(&self, size: u64) {
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.files.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an upload out.
    pub(crate) fn remove(&self, size: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(size))
            });
        let _ = self
            .files
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some(f.saturating_sub(1))
            });
    }

    /// Bytes kept.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Uploads kept.
    pub(crate) fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// Uploads refused since the start.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Records when the oldest upload waiting for delivery was received
    /// (`None`: none waits).
    pub(crate) fn set_oldest(&self, received_us: Option<u64>) {
        // An upload received at the epoch itself is 1 µs later here: 0
        // means none.
        let value = received_us.map_or(0, |us| us.max(1));
        self.oldest_us.store(value, Ordering::Relaxed);
    }

    /// When the oldest upload waiting for delivery was received.
    pub(crate) fn oldest(&self) -> Option<u64> {
        match self.oldest_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_with_452_until_room_is_made() {
        let usage = Usage::new();
        usage.set_capacity(Capacity {
            max_bytes: 100,
            max_files: 2,
        });
        assert_eq!(usage.admit(), Ok(()));
        usage.reserve(60).expect("fits");
        let error = usage.reserve(41).expect_err("over the bytes");
        assert_eq!(error.reply().code().as_u16(), 452);
        usage.reserve(40).expect("fits exactly");
        assert!(usage.admit().is_err(), "100 bytes of 100");
        usage.remove(40);
        assert_eq!(usage.admit(), Ok(()));
        usage.reserve(1).expect("fits");
        assert!(usage.reserve(0).is_err(), "a third upload");
        assert_eq!(usage.files(), 2);
        assert_eq!(usage.refused(), 3);
    }
}
