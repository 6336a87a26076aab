//! The one log line every upload gets.

use std::time::Instant;

use bytes::Bytes;

use super::TransferId;

/// What is known about an upload from its STOR on, for its log line.
#[derive(Debug, Clone)]
pub(super) struct UploadRecord {
    pub(super) upload: TransferId,
    /// The name as the client sent it.
    pub(super) name: Bytes,
    pub(super) started: Instant,
    /// Bytes received, once the transfer is complete.
    pub(super) size: Option<u64>,
    /// A directory listing, not an upload: no log line.
    listing: bool,
}

impl UploadRecord {
    pub(super) fn new(upload: TransferId, name: Bytes, started: Instant) -> Self {
        Self {
            upload,
            name,
            started,
            size: None,
            listing: false,
        }
    }

    /// The record of a directory listing, which is logged as a command.
    pub(super) fn listing(transfer: TransferId, started: Instant) -> Self {
        Self {
            listing: true,
            ..Self::new(transfer, Bytes::new(), started)
        }
    }

    /// Logs the upload's outcome: one info line per upload, with the time
    /// from STOR to this outcome on the session's clock.
    pub(super) fn finish(&self, now: Instant, user: Option<&[u8]>, outcome: &str) {
        if self.listing {
            return;
        }
        tracing::info!(
            user = %user.unwrap_or_default().escape_ascii(),
            name = %self.name.escape_ascii(),
            size = self.size,
            outcome,
            duration_ms = now.saturating_duration_since(self.started).as_millis() as u64,
            "upload",
        );
    }
}
