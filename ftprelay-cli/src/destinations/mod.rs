//! Where a user's files go: the destination flags and `[[destinations]]`
//! entries of the configuration file, made into `ftprelay-deliver`'s
//! destinations. Flags and file entries take one path: each becomes an
//! [`Entry`], and each entry is built once, at start-up, so that a bad
//! setting is a one-line error then and never a surprise on an upload.

mod dir;
mod exec;
mod http;
mod mail;
mod s3;
mod sftp;

pub(crate) use dir::DirEntry;
pub(crate) use exec::ExecEntry;
pub(crate) use http::HttpEntry;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ftprelay_deliver::{Destination, Destinations, Discard, Trust};
use ftprelay_tokio::proto::{FileProcessor, ProcessError, Profile, Upload};
use serde::Deserialize;

use crate::error::CliError;

/// The destination flags: together, the destinations of users without
/// their own.
#[derive(Debug, Args)]
pub(crate) struct DestinationArgs {
    #[command(flatten)]
    pub(crate) exec: exec::ExecArgs,
    #[command(flatten)]
    pub(crate) dir: dir::DirArgs,
    #[command(flatten)]
    pub(crate) http: http::HttpArgs,
    #[command(flatten)]
    pub(crate) mail: mail::MailArgs,
    #[command(flatten)]
    pub(crate) s3: s3::S3Args,
    #[command(flatten)]
    pub(crate) sftp: sftp::SftpArgs,
    /// Destination: log the file's name and size, and drop it.
    #[arg(long)]
    pub(crate) discard: bool,
    /// Trust this CA (PEM) for outgoing TLS, besides the system's roots
    /// (mail, HTTP, S3); repeatable.
    #[arg(long = "trust-ca", value_name = "FILE")]
    pub(crate) trust_ca: Vec<PathBuf>,
}

impl DestinationArgs {
    /// The entries the flags give, in a fixed order.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>, CliError> {
        let mut entries = Vec::new();
        entries.extend(self.exec.entry().map(Entry::Exec));
        entries.extend(self.dir.entry().map(Entry::Dir));
        entries.extend(self.http.entry()?.map(Entry::Http));
        entries.extend(self.mail.entry().map(Entry::Mail));
        entries.extend(self.s3.entry().map(Entry::S3));
        entries.extend(self.sftp.entry().map(Entry::Sftp));
        if self.discard {
            entries.push(Entry::Discard);
        }
        Ok(entries)
    }
}

/// One destination, as the configuration file writes it
/// (`[[destinations]]`, `[[users.destinations]]`) and as the flags give it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Entry {
    /// Run a shell command.
    Exec(exec::ExecEntry),
    /// Store in a folder.
    Dir(dir::DirEntry),
    /// Send to an HTTP endpoint.
    Http(http::HttpEntry),
    /// Mail, attached.
    Mail(mail::MailEntry),
    /// Store in an S3 bucket.
    S3(s3::S3Entry),
    /// Upload to an SFTP server.
    Sftp(sftp::SftpEntry),
    /// Log and drop.
    Discard,
}

/// What building a destination needs besides its entry.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The roots outgoing TLS trusts.
    pub(crate) trust: Trust,
    /// The relay's processing timeout: network destinations give up before.
    pub(crate) process_timeout: Duration,
    /// The bytes of an `--exec` command's output logged per run.
    pub(crate) exec_log_limit: usize,
}

impl Context {
    /// The roots for outgoing TLS: the system's and every `--trust-ca`.
    pub(crate) fn trust(files: &[PathBuf]) -> Result<Trust, CliError> {
        files.iter().try_fold(Trust::system(), |trust, file| {
            trust
                .with_ca_file(file)
                .map_err(|e| CliError::Usage(e.to_string()))
        })
    }
}

/// The destinations of `entries`; `source` names where they came from in
/// errors ("flags", "user scanner").
pub(crate) fn build(
    entries: &[Entry],
    context: &Context,
    source: &str,
) -> Result<Destinations, CliError> {
    let mut list: Vec<Box<dyn Destination>> = Vec::with_capacity(entries.len());
    for entry in entries {
        let built: Result<Box<dyn Destination>, CliError> = match entry {
            Entry::Exec(entry) => entry.build(context).map(|d| Box::new(d) as _),
            Entry::Dir(entry) => entry.build().map(|d| Box::new(d) as _),
            Entry::Http(entry) => entry.build(context).map(|d| Box::new(d) as _),
            Entry::Mail(entry) => entry.build(context).map(|d| Box::new(d) as _),
            Entry::S3(entry) => entry.build(context).map(|d| Box::new(d) as _),
            Entry::Sftp(entry) => entry.build(context).map(|d| Box::new(d) as _),
            Entry::Discard => Ok(Box::new(Discard)),
        };
        list.push(built.map_err(|e| invalid(format!("{source}: {e}")))?);
    }
    Ok(Destinations::new(list))
}

/// A setting that cannot be used: the one-line error of a bad start.
pub(crate) fn invalid(message: impl std::fmt::Display) -> CliError {
    CliError::Usage(message.to_string())
}

/// A user's processor for one session: the user's destinations and
/// profile.
#[derive(Debug, Clone)]
pub(crate) struct Processor {
    destinations: Destinations,
    /// The user's own profile, if any.
    profile: Option<Profile>,
    /// With `--queue`: uploads are queued, and delivered from there.
    queue: Option<ftprelay_deliver::Queue>,
}

impl Processor {
    pub(crate) fn new(
        destinations: Destinations,
        profile: Option<Profile>,
        queue: Option<ftprelay_deliver::Queue>,
    ) -> Self {
        Self {
            destinations,
            profile,
            queue,
        }
    }
}

impl FileProcessor for Processor {
    fn profile(&self) -> Option<Profile> {
        self.profile
    }

    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        match &self.queue {
            Some(queue) => queue.enqueue(upload, &self.destinations).await,
            None => self.destinations.process(upload).await,
        }
    }

    fn store_and_forward(&self) -> bool {
        self.queue.is_some()
    }

    fn admit(&self) -> Result<(), ProcessError> {
        self.queue
            .as_ref()
            .map_or(Ok(()), ftprelay_deliver::Queue::admit)
    }

    async fn hold(&self, upload: &Upload) -> Result<(), ProcessError> {
        match &self.queue {
            Some(queue) => queue.hold(upload, &self.destinations).await,
            None => Ok(()),
        }
    }

    fn forget(&self, upload: &Upload) {
        if let Some(queue) = &self.queue {
            queue.forget(upload);
        }
    }
}
