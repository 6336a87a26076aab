//! Limits, timeouts and policy switches, each with a default that explains
//! itself.

use std::borrow::Cow;
use std::time::Duration;

/// Everything a [`crate::Session`] needs to decide, fixed per relay.
///
/// Build one with [`Config::default`] and change the fields you need; the
/// struct is `#[non_exhaustive]` so that new settings are not breaking.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The text of the `220` greeting. One line: embedded clients read the
    /// greeting as one chunk.
    pub greeting: Cow<'static, str>,
    /// The longest control line accepted, line end not counted. 4096 bytes is
    /// far above any real command (paths included) and bounds what one line
    /// can cost.
    pub max_line_len: usize,
    /// How many bytes of complete, not yet executed lines a session holds
    /// while it waits (for a login check, an upload). Beyond this the session
    /// stops asking for control bytes ([`crate::Session::wants_control_bytes`])
    /// and TCP flow control holds the client. 16 KiB holds hundreds of
    /// pipelined commands, far more than the scripts that pipeline send.
    pub max_pending_input: usize,
    /// How many bytes of replies may wait to be written before the session
    /// runs no more commands (see [`crate::Input::Unwritten`]). 64 KiB: far
    /// more than any client that reads its replies leaves unread.
    pub max_unwritten_replies: usize,
    /// How long a failed login waits before its `530`. One second makes
    /// guessing slow and costs a real user nothing.
    pub failed_login_delay: Duration,
    /// Failed logins allowed per connection; the last one is answered `421`
    /// and the connection closed. Three, as most FTP servers do.
    pub max_failed_logins: u32,
    /// How long the application may take to check a login before the session
    /// gives up with `421`. 30 seconds covers a slow directory server.
    pub login_check_timeout: Duration,
    /// How long a client has to log in from connecting, before `421` and
    /// close. One minute: a device logs in at once; a scanner of open
    /// ports does not.
    pub login_timeout: Duration,
    /// How long one command line may take to arrive, from its first byte
    /// to its line end, before `421` and close (slow-loris). 30 seconds.
    pub line_timeout: Duration,
    /// How long a session may sit without a command before `421` and close.
    /// Five minutes: devices keep sessions open between uploads.
    pub idle_timeout: Duration,
    /// How long to wait for a data connection (after STOR, or for an active
    /// connect), and how long an unused passive listener is kept. 30 seconds
    /// is generous for any network a device sits on.
    pub data_timeout: Duration,
    /// How long a data connection may deliver no bytes before the upload is
    /// aborted with `426`. One minute survives a congested uplink.
    pub transfer_stall_timeout: Duration,
    /// The lowest average rate of an upload, after a grace period; slower
    /// uploads are aborted with `426` (one byte every few seconds never
    /// trips the stall timeout). 1 KiB/s after 60 seconds: any device
    /// uploads far faster, a trickle is cut off within minutes.
    pub min_upload_rate: crate::MinimumRate,
    /// The most bytes per second one session's upload may arrive at;
    /// `None`: no limit, the default. The client is slowed by TCP's own
    /// flow control, never refused.
    pub max_upload_rate: Option<u64>,
    /// How long the processor may take per file before the upload is answered
    /// `451` (and the processor cancelled). One minute: mail and webhooks
    /// answer within that, and a device waiting for `226` should not wait
    /// longer.
    pub process_timeout: Duration,
    /// The largest upload accepted; larger ones get `552`. 1 GiB: a scan, a
    /// photo or a video clip fits; a full disk from one client does not.
    pub max_file_size: u64,
    /// Answer `226` as soon as the file is safely spooled and process it
    /// afterwards, for clients that cannot wait for processing. Off by
    /// default: then a failed processing reaches the device as `451`, and the
    /// device keeps its copy and retries.
    pub ack_on_receipt: bool,
    /// With [`Config::ack_on_receipt`]: how many files of one session may be
    /// processed at once; the next upload waits for a free slot. Eight covers
    /// a camera's burst without letting one client fill the spool.
    pub max_background_processing: usize,
    /// The IPv4 address advertised in `227` replies, for a relay behind NAT or
    /// in a container, by client network if need be ([`crate::PublicAddress`]).
    /// None set (the default) advertises the local address of the control
    /// connection.
    pub passive_address: crate::PublicAddress,
    /// Refuse a passive data connection from any address but the control
    /// connection's peer (port theft protection). On by default; switch it
    /// off only behind a NAT that rewrites data connections' source
    /// addresses. With a passive port range (`RelayConfig::passive_ports`)
    /// a port serves one waiting session per client address, matched by
    /// address; off, a port serves one waiting session, whoever connects
    /// (the range then serves as many sessions at once as it has ports).
    pub data_peer_must_match: bool,
    /// Refuse USER and PASS until the control connection is under TLS.
    pub require_tls: bool,
    /// Refuse uploads and listings unless the data connection is protected
    /// (`PROT P`).
    pub require_protected_data: bool,
    /// What the relay answers to everything that is not an upload. Strict
    /// by default: `550`. See [`Profile::Devices`].
    pub profile: Profile,
    /// In the devices profile, uploads whose name matches one of these are
    /// held after they arrive (`226` once spooled) until renamed (processed
    /// under the new name), deleted (dropped), or the session ends or idles
    /// (processed as they are). `*` matches any run of characters. These are
    /// the temporary names lftp, curl, GStreamer and camera firmwares use.
    pub temporary_names: Vec<String>,
    /// How long a held temporary upload waits for its rename before it is
    /// processed under the name it has. 30 seconds: renames follow uploads
    /// at once.
    pub held_upload_timeout: Duration,
    /// In the devices profile, the most folders a path may have (the file
    /// name counted), for CWD, MKD and uploads; deeper gets `550`/`553`.
    /// 32: dated camera folders go six deep.
    pub max_path_depth: usize,
    /// In the devices profile, the longest path (`/a/b/x.jpg`, in bytes)
    /// a session keeps or shows; longer gets `550`/`553`. 1024 bytes bounds
    /// what a working folder costs and every `PWD` reply.
    pub max_path_length: usize,
    /// In the devices profile, how many processed uploads a session
    /// remembers for SIZE, MDTM and listings; the oldest are forgotten.
    /// 100 covers a device checking its last uploads.
    pub max_remembered_files: usize,
    /// In the devices profile, how many uploads one session may hold for a
    /// rename at once; one more temporary upload is refused `452` before its
    /// data connection opens. Devices rename each upload at once: 8.
    pub max_held_uploads: usize,
    /// In the devices profile, how many bytes one session's held uploads may
    /// take in the spool together: an upload that would pass it gets `552`.
    /// 1 GiB, the default file size limit.
    pub max_held_bytes: u64,
    /// In the devices profile, how long an upload is seen by the same
    /// user's other sessions (listings, SIZE, MDTM), for clients that
    /// upload on one connection and check on another (rclone). A minute:
    /// the check follows the upload at once. Zero: each session sees only
    /// its own uploads.
    pub recent_upload_window: Duration,
}

impl Config {
    /// The bounds of a devices-profile path.
    pub(crate) fn path_limits(&self) -> crate::path::PathLimits {
        crate::path::PathLimits {
            max_depth: self.max_path_depth.max(1),
            max_length: self.max_path_length.max(1),
        }
    }
}

/// What the relay answers to everything that is not an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Profile {
    /// Everything that is not an upload is refused with `550` (the
    /// original's behaviour): no folders, no listings, no renames.
    #[default]
    Strict,
    /// For devices that prepare and confirm uploads: folders, listings,
    /// SIZE/MDTM, renames and deletes are simulated in a namespace that
    /// lives only in the session's memory and holds only this session's
    /// uploads. Nothing stored is ever read, listed or changed.
    Devices,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            greeting: Cow::Borrowed("ftprelay ready."),
            max_line_len: 4096,
            max_pending_input: 16 * 1024,
            max_unwritten_replies: 64 * 1024,
            failed_login_delay: Duration::from_secs(1),
            max_failed_logins: 3,
            login_check_timeout: Duration::from_secs(30),
            login_timeout: Duration::from_secs(60),
            line_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(30),
            transfer_stall_timeout: Duration::from_secs(60),
            min_upload_rate: crate::MinimumRate {
                bytes_per_second: 1024,
                grace: Duration::from_secs(60),
            },
            max_upload_rate: None,
            process_timeout: Duration::from_secs(60),
            max_file_size: 1 << 30,
            ack_on_receipt: false,
            max_background_processing: 8,
            passive_address: crate::PublicAddress::default(),
            data_peer_must_match: true,
            require_tls: false,
            require_protected_data: false,
            profile: Profile::Strict,
            temporary_names: ["*.tmp", "*.part", "*_tmp.*", ".in.*"]
                .map(str::to_owned)
                .to_vec(),
            held_upload_timeout: Duration::from_secs(30),
            max_path_depth: 32,
            max_path_length: 1024,
            max_remembered_files: 100,
            max_held_uploads: 8,
            max_held_bytes: 1 << 30,
            recent_upload_window: Duration::from_secs(60),
        }
    }
}
