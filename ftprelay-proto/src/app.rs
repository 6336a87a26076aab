//! The application side: how the user's code plugs in.
//!
//! The traits are runtime-agnostic (`impl Future + Send`), so one
//! implementation runs on every adapter. The core itself never calls them: it
//! asks the adapter to ([`crate::Output::CheckLogin`],
//! [`crate::Output::Process`], and for a store-and-forward processor
//! [`crate::Output::CheckAdmission`] and [`crate::Output::Hold`]).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::reply::{Reply, ReplyCode};
use crate::session::TransferId;

/// Decides who may log in, and where their files go.
///
/// As in the original `ftprelay`, authentication returns the processor for
/// the session: the login decides the destination.
pub trait Authenticator: Send + Sync + 'static {
    /// The processor a successful login yields.
    type Processor: FileProcessor;

    /// Checks `login` and returns this session's processor, or
    /// [`LoginRejected`]. Never reveal to the client which part was wrong: the
    /// session answers every rejection the same way.
    fn authenticate(
        &self,
        login: &Login,
    ) -> impl Future<Output = Result<Self::Processor, LoginRejected>> + Send;
}

/// Does something with each uploaded file: mail it, post it, store it.
pub trait FileProcessor: Send + Sync + 'static {
    /// Processes one spooled upload. The file at [`Upload::path`] is deleted
    /// when this returns (or is cancelled on timeout); move or copy it to
    /// keep it. `Ok` is answered `226`; an error is answered with
    /// [`ProcessError::reply`].
    fn process(&self, upload: &Upload) -> impl Future<Output = Result<(), ProcessError>> + Send;

    /// The profile of the sessions this processor serves, if not the
    /// relay's ([`crate::Config::profile`]): a per-user choice.
    fn profile(&self) -> Option<crate::Profile> {
        None
    }

    /// Whether this processor stores each upload durably and delivers it
    /// later (a store-and-forward queue): its [`FileProcessor::process`]
    /// returns `Ok` once the upload is safely on disk, not once delivered.
    ///
    /// The relay then cooperates with it twice, so that no `226` is ever
    /// given for an upload that is not durably kept:
    ///
    /// - before each upload (STOR, STOU, APPE; not listings) it asks
    ///   [`FileProcessor::admit`], and a refusal is answered instead of
    ///   `150`, before a byte is received;
    /// - a held upload (the devices profile's temporary names, processed
    ///   only once renamed) is first given to [`FileProcessor::hold`], and
    ///   its `226` waits for it; later the same upload comes to `process`
    ///   under its final name, or to [`FileProcessor::forget`].
    ///
    /// `false` (the default): none of these is called.
    fn store_and_forward(&self) -> bool {
        false
    }

    /// Whether one more upload is taken now: a full queue says no. Asked
    /// only when [`FileProcessor::store_and_forward`], at STOR, STOU and
    /// APPE, before the `150` and before the data connection is used. An
    /// error is answered with its reply ([`ProcessError::storage_full`]:
    /// `452`, and the client tries again later) instead of `150`, and
    /// nothing is received. It is called on the session's task: answer at
    /// once (a panic counts as [`ProcessError::transient`]).
    fn admit(&self) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Keeps a held upload durably: one with a temporary name (devices
    /// profile) that waits for the rename that gives it its final name.
    /// Called only when [`FileProcessor::store_and_forward`], after the
    /// upload was received and before its `226`: `Ok` is answered `226`,
    /// an error with its reply (and the upload is dropped). It runs within
    /// [`crate::Config::process_timeout`]; on timeout it is cancelled, the
    /// client gets `451`, and [`FileProcessor::forget`] follows.
    ///
    /// The spool file at [`Upload::path`] is *not* deleted when this
    /// returns: the relay keeps it until the same upload (the same
    /// [`Upload::id`] and [`Upload::path`]) comes to
    /// [`FileProcessor::process`] under its final name (renamed, or at the
    /// end of the session or of [`crate::Config::held_upload_timeout`]
    /// under the name it has), or to [`FileProcessor::forget`] if it was
    /// deleted or replaced first. A relay that stops abruptly in between
    /// leaves only what `hold` kept.
    fn hold(&self, upload: &Upload) -> impl Future<Output = Result<(), ProcessError>> + Send {
        let _ = upload;
        async { Ok(()) }
    }

    /// A held upload was deleted or replaced before its rename (or its
    /// [`FileProcessor::hold`] was cancelled on timeout, or panicked): drop
    /// what `hold` kept of it. `upload` is the one `hold` got, same path.
    /// Not called after a `hold` that returned an error: that one kept
    /// nothing. The spool file is deleted when this returns. It is called
    /// on the session's task: be quick.
    fn forget(&self, upload: &Upload) {
        let _ = upload;
    }
}

/// A login as the client presented it.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    user: Bytes,
    password: Bytes,
    peer: SocketAddr,
}

impl Login {
    /// A login from its parts.
    pub fn new(user: Bytes, password: Bytes, peer: SocketAddr) -> Self {
        Self {
            user,
            password,
            peer,
        }
    }

    /// The user name, as sent.
    pub fn user(&self) -> &[u8] {
        &self.user
    }

    /// The user name, decoded lossily as UTF-8.
    pub fn user_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.user)
    }

    /// The password, as sent (possibly empty).
    pub fn password(&self) -> &[u8] {
        &self.password
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user_lossy())
            .field("password", &"<masked>")
            .field("peer", &self.peer)
            .finish()
    }
}

/// The answer to a rejected login. Answered `530` after the configured delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginRejected;

impl fmt::Display for LoginRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("login rejected")
    }
}

impl std::error::Error for LoginRejected {}

/// What the core asks to be processed: everything about an upload except
/// where the adapter spooled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRequest {
    /// Which upload of the session this is.
    pub upload: TransferId,
    /// The name as the client sent it in STOR (bytes, any encoding).
    pub name: Bytes,
    /// The file name alone, made safe: the last component of
    /// [`ProcessRequest::path`].
    pub file_name: Bytes,
    /// The virtual absolute path, `/` separated, each component made safe by
    /// [`crate::path`] (`/NVR01/ch1/x.jpg` in the devices profile; `/x.jpg`
    /// in the strict one).
    pub path: Bytes,
    /// The logged-in user.
    pub user: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
    /// The number of bytes received.
    pub size: u64,
}

/// One spooled upload, as a [`FileProcessor`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    request: ProcessRequest,
    path: PathBuf,
}

impl Upload {
    /// The upload of `request`, spooled at `path`.
    pub fn new(request: ProcessRequest, path: PathBuf) -> Self {
        Self { request, path }
    }

    /// Where the file is spooled. It is removed after processing.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name as the client sent it (bytes: devices send Latin-1, GBK and
    /// worse). Metadata only: never a path on this machine.
    pub fn name(&self) -> &[u8] {
        &self.request.name
    }

    /// The file's name, made safe by [`crate::path`]: never empty, never
    /// starting with a dot or a blank, never holding a separator or NUL, so
    /// it is one name on any file system. Still client bytes: not
    /// necessarily UTF-8, and control characters other than NUL may be in it.
    pub fn file_name(&self) -> &[u8] {
        &self.request.file_name
    }

    /// The folders of [`Upload::remote_path`], outermost first, each made
    /// safe like [`Upload::file_name`]: what a processor that recreates the
    /// device's folders creates (the devices profile; none in the strict one).
    pub fn folders(&self) -> impl Iterator<Item = &[u8]> {
        let mut parts: Vec<&[u8]> = self
            .request
            .path
            .split(|b| *b == b'/')
            .filter(|part| !part.is_empty())
            .collect();
        parts.pop();
        parts.into_iter()
    }

    /// [`Upload::file_name`] decoded lossily as UTF-8, for display.
    pub fn file_name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.request.file_name)
    }

    /// The virtual absolute path the client uploaded to, `/` separated:
    /// the folders a device put the file in (devices profile), or `/` and
    /// the file name. Client text: route on it, never use it as a local path.
    pub fn remote_path(&self) -> &[u8] {
        &self.request.path
    }

    /// The user who uploaded it.
    pub fn user(&self) -> &[u8] {
        &self.request.user
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.request.peer
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.request.size
    }

    /// Which upload of its session this is.
    pub fn id(&self) -> TransferId {
        self.request.upload
    }
}

/// Why processing failed. It knows the reply the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessError {
    kind: FailureKind,
    reason: String,
}

/// The kinds of failure, each with its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// `451`: worth retrying.
    Transient,
    /// `550`: never accepted.
    Rejected,
    /// `552`: too large for the destination.
    TooLarge,
    /// `452`: no room now (a full queue); worth retrying later.
    StorageFull,
}

impl ProcessError {
    /// A failure worth retrying (the destination is down): `451`, and the
    /// device keeps its copy and tries again.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            reason: reason.into(),
        }
    }

    /// A file that will never be accepted (wrong type, rejected content):
    /// `550`, so the device does not retry it forever.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Rejected,
            reason: reason.into(),
        }
    }

    /// A file larger than the destination takes (a mail size limit):
    /// `552`, exceeded storage allocation; retrying the same file cannot
    /// help.
    pub fn too_large(reason: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::TooLarge,
            reason: reason.into(),
        }
    }

    /// No room for the upload now (a store-and-forward queue is full, its
    /// disk is): `452`, insufficient storage, a 4xx, so the device keeps
    /// its copy and tries again later. Not permanent.
    pub fn storage_full(reason: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::StorageFull,
            reason: reason.into(),
        }
    }

    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self.kind, FailureKind::Rejected | FailureKind::TooLarge)
    }

    /// The reason, for the log. It is not sent to the client, which may be
    /// anyone.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// This failure with another reason (the same reply): to say which
    /// destination failed, say.
    pub fn with_reason(self, reason: impl Into<String>) -> Self {
        Self {
            kind: self.kind,
            reason: reason.into(),
        }
    }

    /// The reply the client gets.
    pub fn reply(&self) -> Reply {
        match self.kind {
            FailureKind::Rejected => Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "File rejected by the processor.",
            ),
            FailureKind::TooLarge => Reply::new(
                ReplyCode::EXCEEDED_STORAGE,
                "File too large for its destination.",
            ),
            FailureKind::StorageFull => Reply::new(
                ReplyCode::INSUFFICIENT_STORAGE,
                "Insufficient storage: try again later.",
            ),
            FailureKind::Transient => Reply::new(
                ReplyCode::LOCAL_ERROR,
                "Processing failed; the file was not accepted, try again later.",
            ),
        }
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ProcessError {}
