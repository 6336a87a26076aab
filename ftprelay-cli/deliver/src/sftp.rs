//! `--sftp`: each upload to an SFTP server, over SSH with a key, the
//! server's own key pinned in a `known_hosts` file.
//!
//! The session is russh's (pure Rust, async) on [`on_tokio`]: it runs
//! under the smol relay too, and a delivery the relay gives up on is
//! dropped there and then, its connection closed, never completed after
//! the device was told `451`.

mod existing;
mod known_hosts;
mod remote;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ftprelay_proto::{ProcessError, Upload};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpStatusError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::collision;
use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;
use crate::runtime::on_tokio;
use known_hosts::{KnownHosts, Verdict, host_name};
use remote::{Address, Place, with_suffix};

/// The most a delivery waits for one answer of the server (connecting,
/// one request) unless told otherwise ([`Sftp::timeout`]).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from the spool file at a time; russh-sftp cuts them into
/// write requests of [`WRITE_LEN`], up to [`WRITES_IN_FLIGHT`] unanswered.
const READ_LEN: usize = 256 * 1024;
/// The data of one SFTP write request (OpenSSH's own client sends 32 KiB;
/// its server takes up to 256 KiB a packet).
const WRITE_LEN: u32 = 64 * 1024;
/// Write requests sent before the first is answered: what keeps a link
/// with latency busy. The memory a delivery holds is about this times
/// [`WRITE_LEN`], plus [`READ_LEN`].
const WRITES_IN_FLIGHT: usize = 32;
/// The ciphers offered, in order of preference.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_128_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
];
/// The longest temporary name's prefix taken from the file's name: the
/// temporary stays under 255 bytes.
const TEMPORARY_NAME_PART: usize = 200;

/// `--sftp`: uploads each file to an SFTP server, complete or not at all,
/// never overwriting.
///
/// The server is `sftp://USER@HOST[:PORT]/PATH`, PATH a [`Template`]
/// read as `scp` reads `host:path`: relative to the login directory,
/// absolute after a second slash (`sftp://scan@nas//srv/in/`). A PATH that
/// is empty or ends in `/` is a folder, where the file goes as
/// `{path}/{name}` (the devices profile's folders and the safe name, as
/// `--dir` does); any other PATH is the file's own path. Missing folders
/// are made (`mkdir -p`).
///
/// The login is the OpenSSH private key given (ed25519 or ECDSA, not
/// encrypted). The server's key must be in the `known_hosts` file given,
/// as OpenSSH writes it (`[host]:port` for a port other than 22; hashed
/// names are understood): a server whose key is not there, or differs,
/// is refused, and the upload gets `451` with a log line saying which.
///
/// The file is streamed from the spool under a hidden temporary name in
/// its folder (`.NAME.ftprelay-<id>.part`), synced where the server
/// supports it, and renamed to its name once complete, so that the far
/// side never sees half a file; when the name is taken, `name-1.jpg` …
/// `name-9.jpg`, then a unique `name-<time>-<n>.jpg`. On a failure, or
/// when the relay gives up, the temporary is removed (as far as the
/// connection still allows).
///
/// A taken name that already holds exactly the file's bytes (a regular
/// file of the same size, read back and compared) is the file delivered
/// already: the temporary is removed, nothing more is stored, and the log
/// says `already delivered`. A repeated delivery (a queue retrying after
/// a crash, a device sending the same file twice) leaves one copy.
///
/// Every failure is transient, `451` (the device, or a queue, tries
/// again): an unreachable server, an unknown or changed host key, a
/// refused login, a folder that cannot be made or written (`permission
/// denied` included: an operator fixing the server's permissions lets
/// the retry through), a full disk.
///
/// [`Template`]: crate::Template
///
/// ```no_run
/// use ftprelay_deliver::{Destinations, Sftp};
/// use std::path::Path;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let nas = Sftp::new(
///     "sftp://scanner@nas.example.org/inbox/{date}/",
///     Path::new("/etc/ftprelay/id_ed25519"),
///     Path::new("/etc/ftprelay/known_hosts"),
/// )?;
/// let processor = Destinations::new(vec![Box::new(nas)]);
/// # let _ = processor;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Sftp {
    inner: Arc<Inner>,
}

struct Inner {
    address: Address,
    key: Arc<PrivateKey>,
    key_file: PathBuf,
    known_hosts: PathBuf,
    timeout: Duration,
    url: String,
}

/// Why an SFTP destination cannot be used: a bad URL, a key that cannot be
/// read or used, a `known_hosts` file that cannot be read. The message
/// names the setting.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SftpError(String);

impl Sftp {
    /// Uploads to `url` (`sftp://USER@HOST[:PORT]/PATH`), logging in with
    /// the OpenSSH private key in `key_file`, the server's key pinned in
    /// `known_hosts`.
    ///
    /// Everything is checked now, never on the first upload: the URL and
    /// its template, that the key can be read and used (an encrypted key is
    /// refused: nobody is there to type its passphrase), and that
    /// `known_hosts` can be read (it is read again on each connection, so
    /// that a key added to it counts without a restart).
    pub fn new(url: &str, key_file: &Path, known_hosts: &Path) -> Result<Self, SftpError> {
        let address = Address::parse(url).map_err(|e| SftpError(format!("--sftp: {e}")))?;
        let key = load_key(key_file)?;
        let text = crate::small_file::read(known_hosts).map_err(|e| {
            SftpError(format!(
                "the known_hosts file {}: {e} (record the server's key with `ssh-keyscan -p {} {} >> {}`, after checking its fingerprint)",
                known_hosts.display(),
                address.port,
                address.host,
                known_hosts.display()
            ))
        })?;
        let _ = KnownHosts::parse(&text);
        Ok(Self {
            inner: Arc::new(Inner {
                address,
                key: Arc::new(key),
                key_file: key_file.to_owned(),
                known_hosts: known_hosts.to_owned(),
                timeout: DEFAULT_TIMEOUT,
                url: url.to_owned(),
            }),
        })
    }

    /// Gives up on a connection attempt, or on any one answer of the
    /// server, after `timeout` (30 s unless set); the relay's own
    /// processing timeout bounds the whole delivery.
    pub fn timeout(self, timeout: Duration) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self {
            inner: Arc::new(Inner {
                timeout: timeout.max(Duration::from_secs(1)),
                ..inner
            }),
        }
    }

    /// `~/.ssh/known_hosts`, where `ssh` records servers' keys; `None`
    /// without a home directory.
    pub fn default_known_hosts() -> Option<PathBuf> {
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".ssh").join("known_hosts"))
    }
}

impl Clone for Inner {
    fn clone(&self) -> Self {
        Self {
            address: self.address.clone(),
            key: self.key.clone(),
            key_file: self.key_file.clone(),
            known_hosts: self.known_hosts.clone(),
            timeout: self.timeout,
            url: self.url.clone(),
        }
    }
}

impl fmt::Display for Sftp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sftp {}", self.inner.url)
    }
}

impl fmt::Debug for Sftp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sftp")
            .field("url", &self.inner.url)
            .field("key_file", &self.inner.key_file)
            .field("known_hosts", &self.inner.known_hosts)
            .finish_non_exhaustive()
    }
}

impl Destination for Sftp {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        let inner = self.inner.clone();
        let place = inner.address.path.render(fields);
        let source = upload.path().to_owned();
        let temporary = temporary_name(&place.name, fields.id());
        Box::pin(async move {
            let started = std::time::Instant::now();
            let delivered = on_tokio(async move {
                let session = Session::open(&inner).await?;
                let stored = session.store(&inner, &place, &source, &temporary).await;
                session.close().await;
                stored
            })
            .await?;
            match delivered {
                Ok(Stored::Renamed(path)) => {
                    tracing::info!(path = %path, duration_ms = started.elapsed().as_millis() as u64, "stored over sftp");
                    Ok(())
                }
                Ok(Stored::AlreadyThere(path)) => {
                    tracing::info!(path = %path, duration_ms = started.elapsed().as_millis() as u64, "already delivered over sftp (the file at the name holds these bytes)");
                    Ok(())
                }
                Err(reason) => Err(ProcessError::transient(reason)),
            }
        })
    }
}

/// Where a file went on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    /// Renamed to this path.
    Renamed(String),
    /// Found at this path already, the same bytes: not stored again (the
    /// temporary removed).
    AlreadyThere(String),
}

/// `.NAME.ftprelay-<id>.part`, NAME cut (at a character) so that the
/// whole stays a valid name.
fn temporary_name(name: &str, id: &str) -> String {
    let mut end = name.len().min(TEMPORARY_NAME_PART);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.ftprelay-{id}.part", &name[..end])
}

/// The key of `path`, usable to log in.
fn load_key(path: &Path) -> Result<PrivateKey, SftpError> {
    let named = |why: String| SftpError(format!("--sftp-key {}: {why}", path.display()));
    let text = crate::small_file::read(path).map_err(|e| named(e.to_string()))?;
    let key = russh::keys::decode_secret_key(&text, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => named(
            "the key is encrypted; ftprelay needs one without a passphrase (ssh-keygen -t ed25519 -N '')"
                .to_owned(),
        ),
        other => named(format!("not a usable OpenSSH private key: {other}")),
    })?;
    if key.algorithm().is_rsa() {
        return Err(named(
            "RSA keys are not supported; use an ed25519 (ssh-keygen -t ed25519) or ECDSA key"
                .to_owned(),
        ));
    }
    Ok(key)
}

/// Why the SSH connection failed: russh's error, or the server's key.
#[derive(Debug)]
enum SshError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for SshError {
    fn from(error: russh::Error) -> Self {
        Self::Ssh(error)
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ssh(error) => write!(f, "{error}"),
            Self::HostKey(why) => f.write_str(why),
        }
    }
}

/// The client side of the connection: checks the server's key against
/// `known_hosts`.
struct Client {
    /// The server as `known_hosts` names it.
    name: String,
    known: KnownHosts,
    file: PathBuf,
    host: String,
    port: u16,
}

impl russh::client::Handler for Client {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(SshError::HostKey(format!(
                    "{} presented a host certificate, which is not asked for and not accepted",
                    self.name
                )));
            }
        };
        let fingerprint = key.fingerprint(russh::keys::HashAlg::Sha256);
        let file = self.file.display();
        let (name, host, port) = (&self.name, &self.host, self.port);
        match self.known.check(name, key) {
            Verdict::Known => Ok(true),
            Verdict::Unknown => Err(SshError::HostKey(format!(
                "the host key of {name} ({} {fingerprint}) is not in {file}: refused (record it with `ssh-keyscan -p {port} {host} >> {file}` after checking that fingerprint)",
                key.algorithm()
            ))),
            Verdict::Changed { lines } => Err(SshError::HostKey(format!(
                "the host key of {name} CHANGED: it presented {} {fingerprint}, which is not the key {file} records for it (line {}): refused; someone may be in the middle, or the server was reinstalled (then replace the line)",
                key.algorithm(),
                lines
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            Verdict::Revoked { line } => Err(SshError::HostKey(format!(
                "the host key of {name} ({fingerprint}) is marked @revoked in {file} line {line}: refused"
            ))),
        }
    }
}

/// A logged-in SFTP session.
struct Session {
    ssh: Arc<russh::client::Handle<Client>>,
    sftp: Arc<SftpSession>,
}

impl Session {
    /// Connects, checks the server's key, logs in and starts SFTP.
    async fn open(inner: &Inner) -> Result<Self, String> {
        let address = &inner.address;
        let name = host_name(&address.host, address.port);
        let known_hosts = inner.known_hosts.clone();
        let text = tokio::task::spawn_blocking(move || crate::small_file::read(&known_hosts))
            .await
            .map_err(|e| format!("reading the known_hosts file: {e}"))?
            .map_err(|e| {
                format!(
                    "reading the known_hosts file {}: {e}",
                    inner.known_hosts.display()
                )
            })?;
        let known = KnownHosts::parse(&text);
        if known.skipped() > 0 {
            tracing::debug!(file = %inner.known_hosts.display(), lines = known.skipped(), "known_hosts lines skipped (not understood)");
        }
        let mut config = russh::client::Config {
            inactivity_timeout: Some(inner.timeout),
            nodelay: true,
            ..Default::default()
        };
        // AES-GCM first: ring's, in assembly with the CPU's AES
        // instructions (ChaCha20-Poly1305 is plain Rust here: a 1 GiB
        // upload took 13.6 s with it, 5.8 s with AES-GCM, debug builds).
        config.preferred.cipher = Cow::Borrowed(CIPHERS);
        let pinned = known.algorithms(&name);
        if !pinned.is_empty() {
            // The server presents a key of a pinned kind when it has one:
            // a server with several keys is not refused for showing
            // another.
            config.preferred.key = Cow::Owned(pinned);
        }
        let client = Client {
            name: name.clone(),
            known,
            file: inner.known_hosts.clone(),
            host: address.host.clone(),
            port: address.port,
        };
        let at = format!("{}:{}", address.host, address.port);
        let stream = within(
            inner.timeout,
            tokio::net::TcpStream::connect((address.host.as_str(), address.port)),
        )
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| format!("connecting to {at}: {e}"))?;
        let mut ssh = within(
            inner.timeout,
            russh::client::connect_stream(Arc::new(config), stream, client),
        )
        .await
        .map_err(|e| format!("the SSH handshake with {at}: {e}"))?
        .map_err(|e| match e {
            SshError::HostKey(why) => why,
            other => format!("the SSH handshake with {at}: {other}"),
        })?;
        let hash = match inner.key.algorithm().is_rsa() {
            true => ssh.best_supported_rsa_hash().await.ok().flatten().flatten(),
            false => None,
        };
        let auth = within(
            inner.timeout,
            ssh.authenticate_publickey(
                address.user.clone(),
                PrivateKeyWithHashAlg::new(inner.key.clone(), hash),
            ),
        )
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| format!("logging in to {at}: {e}"))?;
        if !auth.success() {
            return Err(format!(
                "{at} refused the key {} for user {:?} (is its public key in that user's authorized_keys?)",
                inner.key_file.display(),
                address.user
            ));
        }
        let sftp = within(inner.timeout, async {
            let channel = ssh
                .channel_open_session()
                .await
                .map_err(|e| e.to_string())?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| e.to_string())?;
            let config = russh_sftp::client::Config {
                max_concurrent_writes: WRITES_IN_FLIGHT,
                max_write_packet_len: WRITE_LEN + 1024,
                request_timeout_secs: inner.timeout.as_secs().max(1),
                ..Default::default()
            };
            SftpSession::new_with_config(channel.into_stream(), config)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .and_then(|r| r)
        .map_err(|e| format!("starting SFTP on {at}: {e}"))?;
        Ok(Self {
            ssh: Arc::new(ssh),
            sftp: Arc::new(sftp),
        })
    }

    /// Ends the session politely (a failure here changes nothing).
    async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// Stores `source` at `place` through `temporary`; the path it got.
    async fn store(
        &self,
        inner: &Inner,
        place: &Place,
        source: &Path,
        temporary: &str,
    ) -> Result<Stored, String> {
        let temporary = place.join(temporary);
        let file = match self.create(&temporary).await {
            Err(e) if is_status(&e, StatusCode::NoSuchFile) && !place.folders.is_empty() => {
                self.make_folders(place).await?;
                self.create(&temporary).await
            }
            other => other,
        }
        .map_err(|e| format!("creating {temporary}: {e}"))?;
        // From here on the temporary exists: removed on failure, and by
        // the guard if this future is dropped (the relay gave up).
        let mut guard = Cleanup {
            session: Some((self.ssh.clone(), self.sftp.clone())),
            path: temporary.clone(),
            timeout: inner.timeout,
        };
        let result = async {
            write_file(file, source)
                .await
                .map_err(|e| format!("writing {temporary}: {e}"))?;
            self.rename_to_free_name(place, &temporary, source).await
        }
        .await;
        match result {
            Ok(path) => {
                guard.session = None;
                Ok(path)
            }
            Err(e) => {
                guard.session = None;
                let _ = within(inner.timeout, self.sftp.remove_file(temporary.clone())).await;
                Err(e)
            }
        }
    }

    /// Creates `path` exclusively, for writing.
    async fn create(&self, path: &str) -> Result<russh_sftp::client::fs::File, SftpStatusError> {
        self.sftp
            .open_with_flags_and_attributes(
                path,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
                FileAttributes::empty(),
            )
            .await
    }

    /// `mkdir -p` of the place's folder: each missing folder from the top
    /// (one that exists, or that another upload makes meanwhile, is fine).
    async fn make_folders(&self, place: &Place) -> Result<(), String> {
        for folder in place.ancestry() {
            if let Err(e) = self.sftp.create_dir(folder.clone()).await {
                match self.sftp.metadata(folder.clone()).await {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(format!("{folder} exists and is not a folder")),
                    Err(_) => return Err(format!("creating the folder {folder}: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Renames `temporary` to the first free spelling of the place's name,
    /// never replacing a file: SFTP's rename fails when the new name
    /// exists (OpenSSH links and unlinks), and a name seen taken is not
    /// tried (a server whose rename would replace it). A taken name that
    /// holds exactly the bytes of `source` is the file delivered already:
    /// the temporary is removed, and nothing more stored.
    async fn rename_to_free_name(
        &self,
        place: &Place,
        temporary: &str,
        source: &Path,
    ) -> Result<Stored, String> {
        for suffix in collision::suffixes() {
            let candidate = place.join(&with_suffix(&place.name, &suffix));
            let taken = match self.lookup(&candidate).await? {
                Some(found) => Some(found),
                None => match self.sftp.rename(temporary, candidate.clone()).await {
                    Ok(()) => return Ok(Stored::Renamed(candidate)),
                    Err(e) => match self.lookup(&candidate).await? {
                        Some(found) => Some(found),
                        None => return Err(format!("renaming {temporary} to {candidate}: {e}")),
                    },
                },
            };
            if let Some(found) = taken
                && existing::holds_our_bytes(&self.sftp, &candidate, &found, source).await?
            {
                // Best effort: a temporary left behind is hidden, and
                // named for this upload.
                if let Err(e) = self.sftp.remove_file(temporary).await {
                    tracing::warn!(path = %temporary, reason = %e, "the temporary of a file delivered already could not be removed");
                }
                return Ok(Stored::AlreadyThere(candidate));
            }
        }
        Err(format!(
            "no free name for {} in {}",
            place.name,
            place.folder()
        ))
    }

    /// What is named `path` (a file, a link, a folder: `lstat`), if
    /// anything.
    async fn lookup(&self, path: &str) -> Result<Option<FileAttributes>, String> {
        match self.sftp.symlink_metadata(path).await {
            Ok(found) => Ok(Some(found)),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(None),
            Err(e) => Err(format!("looking up {path}: {e}")),
        }
    }
}

/// Streams the spool file into `file`, waits until the server has every
/// byte (and synced it, where it supports `fsync@openssh.com`), and closes
/// it.
async fn write_file(
    mut file: russh_sftp::client::fs::File,
    source: &Path,
) -> Result<(), std::io::Error> {
    let mut input = tokio::fs::File::open(source).await?;
    let mut buffer = vec![0; READ_LEN];
    loop {
        let read = input.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        file.write_all(&buffer[..read]).await?;
    }
    // Every write answered, then fsync; then the handle closed (its close
    // answered too: the data is the server's).
    file.flush().await?;
    file.shutdown().await
}

/// Removes a temporary left by a delivery that was dropped: on a task of
/// its own, as the dropped future cannot wait (best effort, bounded).
struct Cleanup {
    /// The connection (kept open until the removal is answered) and its
    /// SFTP session; `None` once there is nothing to clean up.
    #[allow(clippy::type_complexity)]
    session: Option<(Arc<russh::client::Handle<Client>>, Arc<SftpSession>)>,
    path: String,
    timeout: Duration,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some((ssh, sftp)) = self.session.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let path = std::mem::take(&mut self.path);
        let timeout = self.timeout;
        runtime.spawn(async move {
            let removed = within(timeout, sftp.remove_file(path.clone())).await;
            tracing::debug!(path = %path, removed = matches!(removed, Ok(Ok(()))), "temporary of a delivery given up on");
            drop(sftp);
            let _ = ssh
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        });
    }
}

/// Whether `error` is the server's status `code`.
fn is_status(error: &SftpStatusError, code: StatusCode) -> bool {
    matches!(error, SftpStatusError::Status(status) if status.status_code == code)
}

/// `work`, or an error after `timeout`.
async fn within<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_stay_short_and_whole() {
        assert_eq!(
            temporary_name("scan.pdf", "00000000000000ff"),
            ".scan.pdf.ftprelay-00000000000000ff.part"
        );
        let long = "é".repeat(127);
        let temporary = temporary_name(&long, "00000000000000ff");
        assert!(temporary.len() < 255, "{}", temporary.len());
        assert!(temporary.ends_with(".ftprelay-00000000000000ff.part"));
    }

    #[test]
    fn bad_keys_and_files_are_named_at_start() {
        let dir = tempfile::tempdir().expect("dir");
        let known = dir.path().join("known_hosts");
        std::fs::write(&known, "").expect("write");
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not a key\n").expect("write");
        let missing = dir.path().join("missing");
        for key in [&garbage, &missing] {
            let error = Sftp::new("sftp://u@h/", key, &known).expect_err("no key");
            assert!(error.to_string().contains("--sftp-key"), "{error}");
        }
    }
}
