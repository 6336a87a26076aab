//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use ftprelay_tokio::proto::{Cidr, PassivePorts};

/// An FTP server for devices that can only upload by FTP: each file is
/// delivered to its destinations (a folder, a command, a URL, a mailbox, a
/// bucket, an SFTP server), the device is told whether that worked, and
/// nothing is kept.
#[derive(Debug, Parser)]
#[command(name = "ftprelay", version, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Read a password from standard input and print its argon2id hash, for
    /// --users files and password_hash in the config file.
    HashPassword,
    /// The uploads in a queue directory (--queue): list, show, retry, drop.
    Queue {
        #[command(subcommand)]
        command: crate::queue::QueueCommand,
    },
}

/// The profiles of `--profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProfileArg {
    /// Everything that is not an upload gets 550.
    Strict,
    /// Folders, listings, renames and deletes simulated in memory.
    Devices,
}

impl ProfileArg {
    pub(crate) fn profile(self) -> ftprelay_tokio::proto::Profile {
        match self {
            Self::Strict => ftprelay_tokio::proto::Profile::Strict,
            Self::Devices => ftprelay_tokio::proto::Profile::Devices,
        }
    }
}

/// The runtimes the relay can run on.
/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text an event.
    Text,
    /// One JSON object an event.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Runtime {
    /// tokio (multi-threaded).
    Tokio,
    /// smol (async-io; the relay on one executor thread, uploads on threads
    /// of their own).
    Smol,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Address to listen on (repeatable) [default: 127.0.0.1:2121]; IPv6 as `[::1]:2121`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Vec<SocketAddr>,
    /// A user with a plain password, for quick starts (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub(crate) users: Vec<(String, String)>,
    /// A file of users, one `name:HASH` a line (HASH from `ftprelay hash-password`).
    #[arg(long = "users", value_name = "FILE")]
    pub(crate) users_file: Option<PathBuf>,
    /// Also accept `anonymous` and `ftp` with any password.
    #[arg(long)]
    pub(crate) anonymous: bool,
    /// Where uploads are spooled while they are processed [default: a fresh private temp dir].
    #[arg(long, value_name = "DIR")]
    pub(crate) spool_dir: Option<PathBuf>,
    /// Ports for passive data connections, e.g. 30000-30007, shared by the
    /// sessions: each port serves one waiting session per client address
    /// [default: a new free port for each].
    #[arg(long, value_name = "LOW-HIGH", value_parser = parse_port_range)]
    pub(crate) passive_ports: Option<PassivePorts>,
    /// The address advertised in PASV replies (behind NAT, in containers):
    /// an IPv4 address, or a host name (resolved again every minute, for
    /// dynamic DNS); `CIDR=IP` gives the clients of a network another
    /// (a LAN its LAN address); repeatable [default: the control
    /// connection's local address].
    #[arg(long, value_name = "IP|HOST|CIDR=IP")]
    pub(crate) public_address: Vec<String>,
    /// The largest upload accepted; K, M and G suffixes (powers of 1024) [default: 1G].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) max_file_size: Option<u64>,
    /// Control connections at once [default: 512].
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Control connections at once from one address [default: 32].
    #[arg(long, value_name = "N")]
    pub(crate) max_connections_per_ip: Option<usize>,
    /// Close sessions idle for this long [default: 300].
    #[arg(long, value_name = "SECS")]
    pub(crate) idle_timeout: Option<u64>,
    /// Give up on a processor after this long (the upload is answered 451) [default: 60].
    #[arg(long, value_name = "SECS")]
    pub(crate) process_timeout: Option<u64>,
    /// Password hashes checked at once (each costs 19 MiB while it runs);
    /// other logins wait their turn [default: 2].
    #[arg(long, value_name = "N")]
    pub(crate) password_checks: Option<usize>,
    /// Abort uploads (426) whose average rate, after --upload-rate-grace,
    /// is below this many bytes per second; K and M suffixes; 0 is off
    /// [default: 1K].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) min_upload_rate: Option<u64>,
    /// The most bytes per second one session's upload may arrive at (the
    /// client is slowed, not refused); K, M and G suffixes; 0 is no limit
    /// [default: 0].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) max_upload_rate: Option<u64>,
    /// The most bytes per second all uploads together may arrive at; K, M
    /// and G suffixes; 0 is no limit [default: 0].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) max_total_upload_rate: Option<u64>,
    /// How long an upload may take before --min-upload-rate applies [default: 60].
    #[arg(long, value_name = "SECS")]
    pub(crate) upload_rate_grace: Option<u64>,
    /// Answer 226 as soon as a file is received, and process it
    /// afterwards. A failed processing is then lost: the device was told
    /// the file arrived. --queue answers as early and loses nothing.
    #[arg(long, conflicts_with = "queue")]
    pub(crate) ack_on_receipt: bool,
    /// The async runtime.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    pub(crate) runtime: Runtime,
    /// What non-upload commands get: `strict` refuses them (550); `devices`
    /// simulates folders, listings, renames and deletes in memory, for
    /// cameras, scanners and loggers [default: strict].
    #[arg(long, value_enum)]
    pub(crate) profile: Option<ProfileArg>,
    /// FTPS: the certificate chain (PEM). With --tls-key, AUTH TLS is
    /// offered; SIGHUP reloads both files.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// FTPS: the private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// A listener for implicit FTPS (TLS from the first byte, port 990
    /// style), repeatable.
    #[arg(long, value_name = "ADDR")]
    pub(crate) tls_implicit_listen: Vec<SocketAddr>,
    /// Refuse logins and data connections without TLS.
    #[arg(long)]
    pub(crate) tls_required: bool,
    /// Refuse (522) protected data connections that do not resume the
    /// control connection's TLS session; some clients never resume.
    #[arg(long)]
    pub(crate) tls_require_session_reuse: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics, and the health
    /// checks /healthz and /readyz [default: off].
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Read a PROXY protocol header (v1 or v2, as HAProxy's send-proxy and
    /// send-proxy-v2 send) on every connection from a --proxy-from address,
    /// control and passive data: the client it names is the peer for
    /// logs, limits and checks. Other peers are served directly [default: off].
    #[arg(long)]
    pub(crate) proxy_protocol: bool,
    /// A proxy trusted to send PROXY headers, as an address or block
    /// (10.0.0.0/8, 2001:db8::/32), repeatable; needs --proxy-protocol.
    #[arg(long, value_name = "CIDR")]
    pub(crate) proxy_from: Vec<Cidr>,
    /// A TOML configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Less log output (-q warnings, -qq errors).
    #[arg(short, long, action = ArgAction::Count)]
    pub(crate) quiet: u8,
    /// How log lines are written: `text` for people, `json` (one object a
    /// line, with the session's peer and user) for log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Store and forward.
    #[command(flatten)]
    pub(crate) queue: crate::queue::QueueArgs,
    /// Where files go: one or more destinations, each upload to all.
    #[command(flatten)]
    pub(crate) destinations: crate::destinations::DestinationArgs,
}

/// The command line, every flag of a relay also read from the environment:
/// `FTPRELAY_` and the flag's name in capitals with `_` for `-`, except
/// `--user`, whose values are `FTPRELAY_USERS` (and `--users`' file is
/// `FTPRELAY_USERS_FILE`). A flag given on the command line wins; a
/// repeatable flag takes one value from its variable; a switch takes
/// true/false, 1/0, yes/no or on/off. No name is one of
/// the variables `--exec` commands get ([`ftprelay_deliver::UPLOAD_VARIABLES`]).
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().mut_args(|arg| {
        let counted = matches!(
            arg.get_action(),
            ArgAction::Count | ArgAction::Help | ArgAction::Version
        );
        if arg.get_long().is_none() || counted {
            return arg;
        }
        let name = environment_name(arg.get_id().as_str());
        // A switch from the environment: true/false, 1/0, yes/no, on/off.
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let arg = if switch {
            arg.value_parser(clap::builder::BoolishValueParser::new())
        } else {
            arg
        };
        arg.env(name)
    })
}

/// The variable of the flag whose id (its field's name) is `id`.
fn environment_name(id: &str) -> String {
    format!("FTPRELAY_{}", id.to_ascii_uppercase().replace('-', "_"))
}

/// Parses the command line and the environment.
pub(crate) fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches as _;
    let matches = command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

fn parse_user(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.to_owned(), password.to_owned())),
        _ => Err("expected NAME:PASSWORD".to_owned()),
    }
}

/// `LOW-HIGH`, both ports, LOW not above HIGH, neither 0.
pub(crate) fn parse_port_range(text: &str) -> Result<PassivePorts, String> {
    let parsed = text
        .split_once('-')
        .and_then(|(low, high)| Some((low.trim().parse().ok()?, high.trim().parse().ok()?)));
    parsed
        .and_then(|(low, high)| PassivePorts::new(low, high))
        .ok_or_else(|| format!("expected a port range LOW-HIGH with 0 < LOW <= HIGH, got {text:?}"))
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => trimmed.split_at(at),
        None => (trimmed, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => {
            return Err(format!(
                "expected a size like 1048576, 512K, 100M or 2G, got {text:?}"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("expected a size like 1048576, 512K, 100M or 2G, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("2T").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            parse_port_range("50000-50100"),
            Ok(PassivePorts::new(50000, 50100).expect("range"))
        );
        assert!(parse_port_range("50100-50000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("5000").is_err());
    }

    #[test]
    fn users() {
        assert_eq!(
            parse_user("demo:pa:ss"),
            Ok(("demo".to_owned(), "pa:ss".to_owned()))
        );
        assert!(parse_user(":x").is_err());
        assert!(parse_user("nopassword").is_err());
    }
}
