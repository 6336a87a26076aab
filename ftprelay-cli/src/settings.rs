//! The settings of a run: the configuration file, then the flags on top.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ftprelay_tokio::proto::{Cidr, RelayConfig};

use crate::args::{RunArgs, parse_port_range, parse_size};
use crate::destinations::{self, Context};
use crate::error::CliError;
use crate::file::{self, FileConfig, Size};
use crate::users::{Credential, User, check_hash};
use ftprelay_deliver::Destinations;

/// Everything a run needs.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) relay: RelayConfig,
    /// The certificate and key files, when FTPS is on.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) users: Vec<User>,
    pub(crate) anonymous: Option<Destinations>,
    /// Password hashes checked at once.
    pub(crate) password_checks: usize,
    /// Store and forward, with `--queue`.
    pub(crate) queue: Option<ftprelay_deliver::QueueSettings>,
    /// Where to serve metrics and health checks, with `--metrics`.
    pub(crate) metrics: Option<std::net::SocketAddr>,
}

impl Settings {
    /// The settings from the configuration file (if any) and the flags,
    /// which override it. Every error is bad input: exit status 2.
    pub(crate) fn load(args: &RunArgs) -> Result<Self, CliError> {
        let file = match &args.config {
            Some(path) => file::load(path)?,
            None => FileConfig::default(),
        };
        let mut relay = relay_config(args, &file)?;
        let tls = match (
            args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
            args.tls_key.clone().or_else(|| file.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(usage(
                    "FTPS needs both a certificate (tls_cert) and a key (tls_key)",
                ));
            }
        };
        relay.implicit_tls_listen = if args.tls_implicit_listen.is_empty() {
            file.tls_implicit_listen.clone().unwrap_or_default()
        } else {
            args.tls_implicit_listen.clone()
        };
        let required = args.tls_required || file.tls_required.unwrap_or(false);
        let reuse =
            args.tls_require_session_reuse || file.tls_require_session_reuse.unwrap_or(false);
        if tls.is_none() && (required || reuse || !relay.implicit_tls_listen.is_empty()) {
            return Err(usage(
                "--tls-required, --tls-require-session-reuse and --tls-implicit-listen need \
                 --tls-cert and --tls-key",
            ));
        }
        relay.tls_require_session_reuse = reuse;
        relay.session.require_tls = required;
        relay.session.require_protected_data = required;
        let exec_log_limit = match (args.destinations.exec.exec_log_limit, &file.exec_log_limit) {
            (Some(bytes), _) => bytes,
            (None, Some(size)) => size_in_bytes(size, "exec_log_limit")?,
            (None, None) => ftprelay_deliver::DEFAULT_EXEC_LOG_LIMIT as u64,
        };
        let trust_files: Vec<PathBuf> = if args.destinations.trust_ca.is_empty() {
            file.trust_ca.clone()
        } else {
            args.destinations.trust_ca.clone()
        };
        let context = Context {
            trust: Context::trust(&trust_files)?,
            process_timeout: relay.session.process_timeout,
            exec_log_limit: usize::try_from(exec_log_limit).unwrap_or(usize::MAX),
        };
        // The flags' destinations replace the file's.
        let flag_entries = args.destinations.entries()?;
        let default_destinations = if flag_entries.is_empty() {
            let entries = file.entries();
            (!entries.is_empty())
                .then(|| destinations::build(&entries, &context, "the configuration file"))
                .transpose()?
        } else {
            Some(destinations::build(&flag_entries, &context, "flags")?)
        };
        let needs_default = || {
            default_destinations.clone().ok_or_else(|| {
                usage(
                    "no destination given: use --dir DIR, --exec CMD, --http URL, --mail-to ADDR, \
                     --s3 URL, --sftp URL or --discard",
                )
            })
        };

        let mut users: Vec<User> = Vec::new();
        let mut add = |user: User| {
            // Later sources (the flags) override earlier ones (the file).
            users.retain(|u| u.name != user.name);
            users.push(user);
        };
        for entry in &file.users {
            let credential = match (&entry.password, &entry.password_hash) {
                (Some(password), None) => Credential::Password(password.clone()),
                (None, Some(hash)) => {
                    check_hash(hash).map_err(|e| usage(format!("user {}: {e}", entry.name)))?;
                    Credential::Hash(hash.as_str().into())
                }
                _ => {
                    return Err(usage(format!(
                        "user {}: give exactly one of password and password_hash",
                        entry.name
                    )));
                }
            };
            let own = entry.entries();
            let processor = if own.is_empty() {
                needs_default()?
            } else {
                destinations::build(&own, &context, &format!("user {}", entry.name))?
            };
            add(User {
                name: entry.name.clone(),
                credential,
                processor,
                profile: entry.profile.map(crate::args::ProfileArg::profile),
            });
        }
        if let Some(path) = args.users_file.as_ref().or(file.users_file.as_ref()) {
            for (name, hash) in read_users_file(path)? {
                add(User {
                    name,
                    credential: Credential::Hash(hash.into()),
                    processor: needs_default()?,
                    profile: None,
                });
            }
        }
        for (name, password) in &args.users {
            add(User {
                name: name.clone(),
                credential: Credential::Password(password.clone()),
                processor: needs_default()?,
                profile: None,
            });
        }
        let anonymous = if args.anonymous || file.anonymous.unwrap_or(false) {
            Some(needs_default()?)
        } else {
            None
        };
        if default_destinations.is_none() && users.is_empty() {
            return Err(needs_default()
                .err()
                .unwrap_or_else(|| usage("no processor")));
        }
        if users.is_empty() && anonymous.is_none() {
            return Err(usage(
                "no users: give --user NAME:PASSWORD, --users FILE, --anonymous, or [[users]] in --config",
            ));
        }
        let password_checks = args.password_checks.or(file.password_checks).unwrap_or(2);
        if password_checks == 0 {
            return Err(usage("password_checks must be at least 1"));
        }
        let queue = crate::queue::settings(&args.queue, &file)?;
        if queue.is_some() && relay.session.ack_on_receipt {
            return Err(usage(
                "ack_on_receipt and a queue: the queue answers 226 as soon as the file is on \
                 disk, and loses nothing; drop ack_on_receipt",
            ));
        }
        Ok(Self {
            relay,
            tls,
            users,
            anonymous,
            password_checks,
            queue,
            metrics: args.metrics.or(file.metrics),
        })
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

fn relay_config(args: &RunArgs, file: &FileConfig) -> Result<RelayConfig, CliError> {
    let mut relay = RelayConfig::default();
    if !args.listen.is_empty() {
        relay.listen = args.listen.clone();
    } else if let Some(listen) = &file.listen {
        relay.listen = listen.clone();
    }
    if relay.listen.is_empty() {
        return Err(usage("no address to listen on"));
    }
    relay.spool_dir = args.spool_dir.clone().or_else(|| file.spool_dir.clone());
    relay.passive_ports = match (args.passive_ports, &file.passive_ports) {
        (Some(ports), _) => Some(ports),
        (None, Some(text)) => {
            Some(parse_port_range(text).map_err(|e| usage(format!("passive_ports: {e}")))?)
        }
        (None, None) => None,
    };
    let public = if args.public_address.is_empty() {
        file.public_address
            .clone()
            .map(crate::file::OneOrMany::into_vec)
            .unwrap_or_default()
    } else {
        args.public_address.clone()
    };
    relay.session.passive_address = crate::public_address::parse(&public)?;
    if let Some(size) = args.max_file_size {
        relay.session.max_file_size = size;
    } else if let Some(size) = &file.max_file_size {
        relay.session.max_file_size = size_in_bytes(size, "max_file_size")?;
    }
    if let Some(max) = args.max_connections.or(file.max_connections) {
        relay.max_connections = max;
    }
    if let Some(max) = args.max_connections_per_ip.or(file.max_connections_per_ip) {
        relay.max_connections_per_ip = max;
    }
    if let Some(secs) = args.idle_timeout.or(file.idle_timeout) {
        relay.session.idle_timeout = seconds(secs, "idle timeout")?;
    }
    if let Some(secs) = args.process_timeout.or(file.process_timeout) {
        relay.session.process_timeout = seconds(secs, "process timeout")?;
        // Give a shutdown time for the processing it waits for.
        relay.shutdown_grace = relay
            .shutdown_grace
            .max(relay.session.process_timeout + Duration::from_secs(30));
    }
    if let Some(rate) = args.min_upload_rate {
        relay.session.min_upload_rate.bytes_per_second = rate;
    } else if let Some(rate) = &file.min_upload_rate {
        relay.session.min_upload_rate.bytes_per_second = match rate {
            Size::Bytes(bytes) => *bytes,
            Size::Text(text) => {
                parse_size(text).map_err(|e| usage(format!("min_upload_rate: {e}")))?
            }
        };
    }
    if let Some(secs) = args.upload_rate_grace.or(file.upload_rate_grace) {
        relay.session.min_upload_rate.grace = seconds(secs, "upload rate grace")?;
    }
    let rate =
        |flag: Option<u64>, key: &Option<Size>, name: &str| -> Result<Option<u64>, CliError> {
            let bytes = match (flag, key) {
                (Some(bytes), _) => bytes,
                (None, Some(Size::Bytes(bytes))) => *bytes,
                (None, Some(Size::Text(text))) => {
                    parse_size(text).map_err(|e| usage(format!("{name}: {e}")))?
                }
                (None, None) => 0,
            };
            Ok((bytes > 0).then_some(bytes))
        };
    relay.session.max_upload_rate = rate(
        args.max_upload_rate,
        &file.max_upload_rate,
        "max_upload_rate",
    )?;
    relay.max_total_upload_rate = rate(
        args.max_total_upload_rate,
        &file.max_total_upload_rate,
        "max_total_upload_rate",
    )?;
    let slowest = relay.session.min_upload_rate.bytes_per_second;
    if let Some(most) = relay.session.max_upload_rate
        && most < slowest
    {
        return Err(usage(format!(
            "--max-upload-rate {most} is below --min-upload-rate {slowest}: every upload would be aborted"
        )));
    }
    relay.session.ack_on_receipt = args.ack_on_receipt || file.ack_on_receipt.unwrap_or(false);
    if let Some(profile) = args.profile.or(file.profile) {
        relay.session.profile = profile.profile();
    }
    relay.proxy_from = proxy_from(args, file)?;
    Ok(relay)
}

/// The proxies trusted to send PROXY headers: `--proxy-protocol` and at
/// least one `--proxy-from` (the flags' list replaces the file's), or
/// neither.
fn proxy_from(args: &RunArgs, file: &FileConfig) -> Result<Vec<Cidr>, CliError> {
    let on = args.proxy_protocol || file.proxy_protocol.unwrap_or(false);
    let from = if args.proxy_from.is_empty() {
        file.proxy_from
            .iter()
            .flatten()
            .map(|text| {
                text.parse::<Cidr>()
                    .map_err(|e| usage(format!("proxy_from: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        args.proxy_from.clone()
    };
    match (on, from.is_empty()) {
        (true, true) => Err(usage(
            "--proxy-protocol needs --proxy-from CIDR: the proxies trusted to send headers",
        )),
        (false, false) => Err(usage(
            "--proxy-from needs --proxy-protocol (proxy_protocol = true)",
        )),
        (true, false) => Ok(from),
        (false, true) => Ok(Vec::new()),
    }
}

/// A size from the configuration file, in bytes; `key` names it in errors.
fn size_in_bytes(size: &Size, key: &str) -> Result<u64, CliError> {
    match size {
        Size::Bytes(bytes) => Ok(*bytes),
        Size::Text(text) => parse_size(text).map_err(|e| usage(format!("{key}: {e}"))),
    }
}

fn seconds(secs: u64, what: &str) -> Result<Duration, CliError> {
    if secs == 0 {
        return Err(usage(format!("the {what} must be at least 1 second")));
    }
    Ok(Duration::from_secs(secs))
}

/// A users file: one `name:HASH` a line, `#` comments and blank lines
/// ignored. Errors name the file and the line.
fn read_users_file(path: &Path) -> Result<Vec<(String, String)>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut users = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |message: String| usage(format!("{}:{}: {message}", path.display(), index + 1));
        let (name, hash) = line
            .split_once(':')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| at("expected name:HASH".to_owned()))?;
        check_hash(hash).map_err(at)?;
        users.push((name.to_owned(), hash.to_owned()));
    }
    Ok(users)
}
