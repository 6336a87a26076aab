//! The devices profile's virtual namespace, as one value: everything the
//! profile keeps between commands, and nothing else of the session.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::record::UploadRecord;
use crate::RecentUploads;

/// The working folder, this session's files, the pending rename, the wall
/// clock MDTM answers with, and the relay's recent uploads. It lives only
/// in the session's memory; the commands that use it are in `devices.rs`.
#[derive(Debug, Default)]
pub(super) struct Namespace {
    /// The virtual working folder (components, made safe).
    pub(super) cwd: Vec<Bytes>,
    /// This session's uploads: processed (remembered, within a bound) and
    /// held for a rename.
    pub(super) files: Vec<SessionFile>,
    /// The path of the last RNFR, for the RNTO that follows.
    pub(super) rename_from: Option<Vec<Bytes>>,
    /// A wall-clock time and the instant it was read, for MDTM.
    pub(super) wall_clock: Option<(SystemTime, Instant)>,
    /// The relay's recent uploads, shared with the user's other sessions,
    /// and this session's number there.
    pub(super) recent: Option<(Arc<RecentUploads>, u64)>,
}

/// An upload of this session, as the devices profile shows it.
#[derive(Debug, Clone)]
pub(super) struct SessionFile {
    pub(super) path: Vec<Bytes>,
    pub(super) size: u64,
    pub(super) received: Instant,
    /// Set while the upload waits for its rename (a temporary name).
    pub(super) held: Option<UploadRecord>,
}
