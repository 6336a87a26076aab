//! The TOML configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::destinations::{DirEntry, Entry, ExecEntry, HttpEntry};
use crate::error::CliError;

/// Everything the flags set, plus per-user processors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<Vec<SocketAddr>>,
    pub(crate) users_file: Option<PathBuf>,
    pub(crate) anonymous: Option<bool>,
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) passive_ports: Option<String>,
    pub(crate) public_address: Option<OneOrMany>,
    pub(crate) max_file_size: Option<Size>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) idle_timeout: Option<u64>,
    pub(crate) process_timeout: Option<u64>,
    pub(crate) min_upload_rate: Option<Size>,
    pub(crate) max_upload_rate: Option<Size>,
    pub(crate) max_total_upload_rate: Option<Size>,
    pub(crate) upload_rate_grace: Option<u64>,
    pub(crate) ack_on_receipt: Option<bool>,
    pub(crate) password_checks: Option<usize>,
    pub(crate) profile: Option<crate::args::ProfileArg>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) tls_implicit_listen: Option<Vec<SocketAddr>>,
    pub(crate) tls_required: Option<bool>,
    pub(crate) exec_log_limit: Option<Size>,
    pub(crate) tls_require_session_reuse: Option<bool>,
    /// `--metrics ADDR`.
    pub(crate) metrics: Option<SocketAddr>,
    // The PROXY protocol (`--proxy-protocol`, `--proxy-from`).
    pub(crate) proxy_protocol: Option<bool>,
    pub(crate) proxy_from: Option<Vec<String>>,
    // The queue (`--queue` and its settings).
    pub(crate) queue_dir: Option<PathBuf>,
    pub(crate) queue_retry_first: Option<u64>,
    pub(crate) queue_retry_max: Option<u64>,
    pub(crate) queue_max_age: Option<u64>,
    pub(crate) queue_max_bytes: Option<Size>,
    pub(crate) queue_max_files: Option<u64>,
    pub(crate) queue_deliveries: Option<usize>,
    pub(crate) queue_deliveries_per_destination: Option<usize>,
    pub(crate) queue_attempt_timeout: Option<u64>,
    pub(crate) queue_batch: Option<usize>,
    /// Roots for outgoing TLS besides the system's.
    #[serde(default)]
    pub(crate) trust_ca: Vec<PathBuf>,
    // The destinations of users without their own: these shorthands and
    // the `[[destinations]]` list, together.
    pub(crate) exec: Option<String>,
    pub(crate) dir: Option<String>,
    pub(crate) http: Option<String>,
    pub(crate) discard: Option<bool>,
    #[serde(default)]
    pub(crate) destinations: Vec<Entry>,
    #[serde(default)]
    pub(crate) users: Vec<FileUser>,
}

/// A string, or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// A size as a number of bytes or a string with a suffix (`"100M"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Size {
    Bytes(u64),
    Text(String),
}

/// A `[[users]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileUser {
    pub(crate) name: String,
    pub(crate) password: Option<String>,
    pub(crate) password_hash: Option<String>,
    /// This user's profile, if not the relay's.
    pub(crate) profile: Option<crate::args::ProfileArg>,
    pub(crate) exec: Option<String>,
    pub(crate) dir: Option<String>,
    pub(crate) http: Option<String>,
    pub(crate) discard: Option<bool>,
    /// This user's destinations (with the shorthands), if not the default.
    #[serde(default)]
    pub(crate) destinations: Vec<Entry>,
}

/// The entries of the one-line destinations (`exec = "…"`, `dir = "…"`,
/// `http = "…"`, `discard = true`), then `list`'s.
fn entries(
    exec: &Option<String>,
    dir: &Option<String>,
    http: &Option<String>,
    discard: Option<bool>,
    list: &[Entry],
) -> Vec<Entry> {
    let mut entries = Vec::new();
    if let Some(command) = exec {
        entries.push(Entry::Exec(ExecEntry {
            command: command.clone(),
        }));
    }
    if let Some(path) = dir {
        entries.push(Entry::Dir(DirEntry {
            path: path.clone(),
            mode: None,
        }));
    }
    if let Some(url) = http {
        entries.push(Entry::Http(HttpEntry::new(url.clone())));
    }
    if discard == Some(true) {
        entries.push(Entry::Discard);
    }
    entries.extend(list.iter().cloned());
    entries
}

impl FileConfig {
    /// The destinations of users without their own.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        entries(
            &self.exec,
            &self.dir,
            &self.http,
            self.discard,
            &self.destinations,
        )
    }
}

impl FileUser {
    /// This user's own destinations; empty for the default ones.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        entries(
            &self.exec,
            &self.dir,
            &self.http,
            self.discard,
            &self.destinations,
        )
    }
}

/// Reads and parses `path`. Errors name the file, the line and the key.
pub(crate) fn load(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|(line, message)| {
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        CliError::Usage(format!("{}{at}: {message}", path.display()))
    })
}

/// Parses the text of a configuration file; an error comes with its line.
pub(crate) fn parse(text: &str) -> Result<FileConfig, (Option<usize>, String)> {
    toml::from_str::<FileConfig>(text).map_err(|error| {
        let line = error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        (line, error.message().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let text = r#"
listen = ["127.0.0.1:2121", "[::1]:2121"]
passive_ports = "50000-50100"
max_file_size = "100M"
discard = true

[[users]]
name = "scanner"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA"
dir = "/srv/scans"

[[users]]
name = "camera"
password = "pw"
exec = "mail -s snapshot me@example.org < \"$1\""
"#;
        let config = parse(text).expect("valid");
        assert_eq!(config.listen.as_ref().map(Vec::len), Some(2));
        assert_eq!(config.users.len(), 2);
        assert_eq!(config.discard, Some(true));
        assert_eq!(config.users[0].dir.as_deref(), Some("/srv/scans"));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let (line, message) = parse("listen = []\n\ncolour = \"blue\"\n").expect_err("unknown key");
        assert_eq!(line, Some(3));
        assert!(message.contains("colour"), "{message}");
        let (line, message) =
            parse("[[users]]\nname = \"a\"\npasword = \"typo\"\n").expect_err("unknown key");
        assert_eq!(line, Some(3), "{message}");
        assert!(message.contains("pasword"), "{message}");
    }
}
