//! `ftprelay`: a standalone FTP upload relay that needs no code.
//!
//! ```text
//! ftprelay [OPTIONS] DESTINATION…   (--dir, --exec, --http, --mail-to, --s3, --sftp, --discard)
//! ftprelay hash-password
//! ```

mod args;
mod destinations;
mod error;
mod file;
mod hash;
mod metrics;
mod public_address;
mod queue;
mod settings;
mod signals;
mod systemd;
mod users;
mod verifier;

use std::process::ExitCode;

use clap::error::ErrorKind;
use tracing_subscriber::EnvFilter;

use crate::args::{Command, LogFormat, RunArgs, Runtime};
use crate::error::CliError;
use crate::settings::Settings;
use crate::users::Users;

#[allow(clippy::print_stdout, clippy::print_stderr)] // the program's own output
fn main() -> ExitCode {
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            print!("{error}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // One line, not clap's usage block: its first paragraph, joined
            // (a missing flag's name is on the line after the message).
            let rendered = error.to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = paragraph.join(" ");
            eprintln!("ftprelay: {}", message.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Some(Command::HashPassword) => hash::hash_password().map(|hash| println!("{hash}")),
        Some(Command::Queue { command }) => queue::run(&command).map(|out| print!("{out}")),
        None => run(&cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ftprelay: {error}");
            error.exit_code()
        }
    }
}

fn run(args: &RunArgs) -> Result<(), CliError> {
    // First, while this is the only thread: listenfd changes the
    // environment (takes LISTEN_*), which no other thread may read then.
    let inherited = systemd::inherited_listeners()?;
    let settings = Settings::load(args)?;
    init_logging(args.verbose, args.quiet, args.log_format);
    let tls = load_tls(&settings.tls)?;
    let signalled = signals::handle(tls.clone().zip(settings.tls.clone()))?;
    let stopped = async {
        signalled.await;
        systemd::stopping();
    };
    // The same steps on either runtime; only the adapter differs.
    macro_rules! serve_on {
        ($adapter:ident) => {
            async {
                let (relay, log, metrics) = bind(settings, |config, users, observer| async move {
                    let relay =
                        $adapter::Relay::bind_inherited(config, inherited, users, tls).await?;
                    Ok(match observer {
                        Some(observer) => relay.with_observer(observer),
                        None => relay,
                    })
                })
                .await?;
                let addrs = relay.local_addrs();
                log(&addrs, relay.spool_dir());
                systemd::ready(addrs.as_deref().unwrap_or_default());
                let stopped = async move {
                    stopped.await;
                    // /readyz says so while the uploads in flight finish.
                    if let Some(metrics) = metrics {
                        metrics.set_draining();
                    }
                };
                relay.serve(stopped).await.map_err(runtime_error)
            }
        };
    }
    match args.runtime {
        Runtime::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))?
            .block_on(serve_on!(ftprelay_tokio)),
        Runtime::Smol => smol::block_on(serve_on!(ftprelay_smol)),
    }?;
    tracing::info!("stopped");
    Ok(())
}

/// The certificate and key of `paths` (one `Tls` serves both runtimes). A
/// file that cannot be used is bad input (exit 2).
fn load_tls(
    paths: &Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<Option<ftprelay_tokio::Tls>, CliError> {
    paths
        .as_ref()
        .map(|(cert, key)| ftprelay_tokio::Tls::from_pem_files(cert, key))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// Binds a relay with `bind_relay` (either adapter's `Relay::bind`, then
/// its observer if any); returns it with the function that logs its
/// start-up lines, and its metrics with `--metrics` (served already).
async fn bind<R, F>(
    settings: Settings,
    bind_relay: impl FnOnce(
        ftprelay_tokio::proto::RelayConfig,
        Users,
        Option<std::sync::Arc<dyn ftprelay_tokio::Observer>>,
    ) -> F,
) -> Result<
    (
        R,
        impl Fn(&std::io::Result<Vec<std::net::SocketAddr>>, &std::path::Path),
        Option<metrics::Shared>,
    ),
    CliError,
>
where
    F: std::future::Future<Output = std::io::Result<R>>,
{
    let Settings {
        relay: config,
        mut users,
        mut anonymous,
        tls,
        password_checks,
        queue,
        metrics: metrics_addr,
    } = settings;
    if config.session.ack_on_receipt {
        tracing::warn!(
            "--ack-on-receipt: a file whose processing fails after its 226 is lost (the device was told it arrived); --queue DIR answers as early and keeps it until delivered"
        );
    }
    // Made before the queue, whose routes give it the destinations.
    let metrics = metrics_addr.map(|_| std::sync::Arc::new(metrics::Metrics::new(queue.is_some())));
    if let Some(metrics) = &metrics {
        let observer: std::sync::Arc<dyn ftprelay_deliver::DeliveryObserver> = metrics.clone();
        for user in &mut users {
            user.processor = user.processor.clone().observed_by(observer.clone());
        }
        anonymous = anonymous.map(|destinations| destinations.observed_by(observer.clone()));
    }
    let queue = queue
        .map(|queue| {
            let routes = queue::UserRoutes {
                by_name: users
                    .iter()
                    .map(|user| (user.name.as_bytes().to_vec(), user.processor.clone()))
                    .collect(),
                anonymous: anonymous.clone(),
            };
            ftprelay_deliver::Queue::open(queue, std::sync::Arc::new(routes))
                .map_err(|e| CliError::Runtime(e.to_string()))
        })
        .transpose()?;
    let ftps = match (&tls, config.implicit_tls_listen.as_slice()) {
        (None, _) => "off".to_owned(),
        (Some(_), []) => "AUTH TLS".to_owned(),
        (Some(_), implicit) => format!("AUTH TLS, implicit on {implicit:?}"),
    };
    let summary = users_summary(&users, anonymous.as_ref());
    let passive = config
        .passive_ports
        .map_or("any".to_owned(), |p| format!("{}-{}", p.first(), p.last()));
    let verifier = verifier::Verifier::new(password_checks)
        .map_err(|e| CliError::Runtime(format!("cannot start the password checks: {e}")))?;
    if let (Some(metrics), Some(queue)) = (&metrics, &queue) {
        metrics.watch_queue(queue.clone());
    }
    if let (Some(metrics), Some(addr)) = (&metrics, metrics_addr) {
        let bound = metrics::serve(addr, metrics.clone())?;
        tracing::info!(metrics = %bound, "serving metrics at /metrics, health at /healthz and /readyz");
    }
    let observer = metrics
        .clone()
        .map(|metrics| metrics as std::sync::Arc<dyn ftprelay_tokio::Observer>);
    let authenticator = Users::new(users, anonymous, verifier, queue);
    let relay = bind_relay(config, authenticator, observer)
        .await
        .map_err(runtime_error)?;
    let log = move |addrs: &std::io::Result<Vec<std::net::SocketAddr>>, spool: &std::path::Path| {
        for addr in addrs.iter().flatten() {
            tracing::info!(listen = %addr, passive_ports = %passive, spool = %spool.display(), ftps = %ftps, users = %summary, "ftprelay listening");
        }
    };
    Ok((relay, log, metrics))
}

fn runtime_error(error: std::io::Error) -> CliError {
    CliError::Runtime(error.to_string())
}

/// `name (processor), …`: who can log in and where their files go. Never
/// passwords.
fn users_summary(
    users: &[users::User],
    anonymous: Option<&ftprelay_deliver::Destinations>,
) -> String {
    let mut parts: Vec<String> = users
        .iter()
        .map(|user| format!("{} ({})", user.name, user.processor))
        .collect();
    if let Some(spec) = anonymous {
        parts.push(format!("anonymous ({spec})"));
    }
    parts.join(", ")
}

fn init_logging(verbose: u8, quiet: u8, format: LogFormat) {
    let level = match (i16::from(verbose) - i16::from(quiet)).clamp(-2, 2) {
        -2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => logs.init(),
        // The event's fields at the top level, the session's (peer, user)
        // under "span": one flat object a line for a log collector.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
