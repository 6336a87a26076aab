//! `--sftp URL` and its companions, `type = "sftp"`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ftprelay_deliver::Sftp;
use serde::Deserialize;

use super::{Context, invalid};
use crate::error::CliError;

/// The `--sftp` flags.
#[derive(Debug, Args)]
pub(crate) struct SftpArgs {
    /// Destination: upload the file over SFTP to `sftp://USER@HOST[:PORT]/PATH`
    /// (PATH a template, relative to the login directory, absolute after a
    /// second slash; a folder when it ends in /), under a temporary name
    /// renamed when complete, never overwriting.
    #[arg(long, value_name = "URL", requires = "sftp_key")]
    pub(crate) sftp: Option<String>,
    /// The OpenSSH private key --sftp logs in with (ed25519 or ECDSA,
    /// without a passphrase).
    #[arg(long, value_name = "FILE", requires = "sftp")]
    pub(crate) sftp_key: Option<PathBuf>,
    /// The known_hosts file that pins the --sftp server's key (an unknown or
    /// changed key is refused) [default: ~/.ssh/known_hosts].
    #[arg(long, value_name = "FILE", requires = "sftp")]
    pub(crate) sftp_known_hosts: Option<PathBuf>,
}

impl SftpArgs {
    pub(crate) fn entry(&self) -> Option<SftpEntry> {
        self.sftp.clone().map(|url| SftpEntry {
            url,
            key: self.sftp_key.clone().unwrap_or_default(),
            known_hosts: self.sftp_known_hosts.clone(),
        })
    }
}

/// `[[destinations]] type = "sftp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SftpEntry {
    /// `sftp://USER@HOST[:PORT]/PATH`.
    pub(crate) url: String,
    /// The private key file.
    pub(crate) key: PathBuf,
    /// The known_hosts file; `~/.ssh/known_hosts` when absent.
    pub(crate) known_hosts: Option<PathBuf>,
}

impl SftpEntry {
    pub(crate) fn build(&self, context: &Context) -> Result<Sftp, CliError> {
        if self.key.as_os_str().is_empty() {
            return Err(invalid(
                "the sftp destination needs a key (--sftp-key FILE)",
            ));
        }
        let known_hosts = match &self.known_hosts {
            Some(file) => file.clone(),
            None => Sftp::default_known_hosts().ok_or_else(|| {
                invalid("no home directory for ~/.ssh/known_hosts: give --sftp-known-hosts FILE")
            })?,
        };
        let sftp = Sftp::new(&self.url, &self.key, &known_hosts).map_err(invalid)?;
        // Before the relay's own timeout, so that a server that does not
        // answer (a dropped SYN, a stalled write) is logged as that, not
        // as "processing timed out".
        let timeout = context.process_timeout;
        Ok(sftp.timeout(
            timeout
                .saturating_sub(Duration::from_secs(1))
                .max(timeout / 2),
        ))
    }
}
