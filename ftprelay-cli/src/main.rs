//! `ftprelay`: a standalone FTP upload relay that needs no code.
//!
//! ```text
//! ftprelay [OPTIONS] (--exec CMD | --dir DIR | --http URL | --discard)
//! ftprelay hash-password
//! ```

mod args;
mod error;
mod file;
mod hash;
mod processors;
mod settings;
mod users;
mod verifier;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, RunArgs, Runtime};
use crate::error::CliError;
use crate::settings::Settings;
use crate::users::Users;

#[allow(clippy::print_stdout, clippy::print_stderr)] // the program's own output
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    let settings = Settings::load(args)?;
    init_logging(args.verbose, args.quiet);
    let paths = settings.tls.clone();
    match args.runtime {
        Runtime::Tokio => {
            let tls = load_tls(&paths, ftprelay_tokio::Tls::from_pem_files)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))?;
            runtime.block_on(async {
                let shutdown = shutdown_signal();
                if let (Some(tls), Some((cert, key))) = (tls.clone(), paths) {
                    tokio::spawn(reload_on_hangup(move || tls.reload_pem_files(&cert, &key)));
                }
                let bind_relay = |config, users| async move {
                    match tls {
                        Some(tls) => ftprelay_tokio::Relay::bind_with_tls(config, users, tls).await,
                        None => ftprelay_tokio::Relay::bind(config, users).await,
                    }
                };
                let (relay, log) = bind(settings, bind_relay).await?;
                log(&relay.local_addrs(), relay.spool_dir());
                relay.serve(shutdown).await.map_err(runtime_error)
            })
        }
        Runtime::Smol => {
            let tls = load_tls(&paths, ftprelay_smol::Tls::from_pem_files)?;
            // Signals arrive through tokio's handler on a thread of its own;
            // closing the channel stops the relay.
            let (signalled, stop) = smol::channel::bounded::<()>(1);
            let (installed, handlers_ready) = std::sync::mpsc::channel::<()>();
            let reloadable = tls.clone().zip(paths);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(async {
                        let shutdown = shutdown_signal();
                        if let Some((tls, (cert, key))) = reloadable {
                            tokio::spawn(reload_on_hangup(move || {
                                tls.reload_pem_files(&cert, &key)
                            }));
                        }
                        let _ = installed.send(());
                        shutdown.await;
                    }),
                    Err(error) => {
                        tracing::error!(%error, "cannot handle signals; stopping");
                    }
                }
                drop(signalled);
            });
            // Until the handlers are in place, a signal would kill the relay.
            let _ = handlers_ready.recv();
            smol::block_on(async {
                let bind_relay = |config, users| async move {
                    match tls {
                        Some(tls) => ftprelay_smol::Relay::bind_with_tls(config, users, tls).await,
                        None => ftprelay_smol::Relay::bind(config, users).await,
                    }
                };
                let (relay, log) = bind(settings, bind_relay).await?;
                log(&relay.local_addrs(), relay.spool_dir());
                let stopped = async move {
                    let _ = stop.recv().await;
                };
                relay.serve(stopped).await.map_err(runtime_error)
            })
        }
    }?;
    tracing::info!("stopped");
    Ok(())
}

/// The certificate and key of `paths`, loaded with the adapter's `Tls`. A
/// file that cannot be used is bad input (exit 2).
fn load_tls<T>(
    paths: &Option<(std::path::PathBuf, std::path::PathBuf)>,
    load: impl Fn(&std::path::Path, &std::path::Path) -> std::io::Result<T>,
) -> Result<Option<T>, CliError> {
    paths
        .as_ref()
        .map(|(cert, key)| load(cert, key))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// SIGHUP reloads the certificate and key: new connections get them,
/// sessions keep theirs. The handler is installed when this is called.
fn reload_on_hangup(
    reload: impl Fn() -> std::io::Result<()> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let hangup = signal(SignalKind::hangup());
    async move {
        let Ok(mut hangup) = hangup else { return };
        while hangup.recv().await.is_some() {
            match reload() {
                Ok(()) => tracing::info!("SIGHUP: certificate and key reloaded"),
                Err(error) => {
                    tracing::warn!(%error, "SIGHUP: reload failed; keeping the old certificate")
                }
            }
        }
    }
}

/// Binds a relay with `bind_relay` (either adapter's `Relay::bind`); returns
/// it with the function that logs its start-up lines.
async fn bind<R, F>(
    settings: Settings,
    bind_relay: impl FnOnce(ftprelay_tokio::proto::RelayConfig, Users) -> F,
) -> Result<
    (
        R,
        impl Fn(&std::io::Result<Vec<std::net::SocketAddr>>, &std::path::Path),
    ),
    CliError,
>
where
    F: std::future::Future<Output = std::io::Result<R>>,
{
    let Settings {
        relay: config,
        users,
        anonymous,
        tls,
        password_checks,
        exec_log_limit,
    } = settings;
    let ftps = match (&tls, config.implicit_tls_listen.as_slice()) {
        (None, _) => "off".to_owned(),
        (Some(_), []) => "AUTH TLS".to_owned(),
        (Some(_), implicit) => format!("AUTH TLS, implicit on {implicit:?}"),
    };
    let summary = users_summary(&users, anonymous.as_deref());
    let passive = config
        .passive_ports
        .map_or("any".to_owned(), |p| format!("{}-{}", p.first(), p.last()));
    let verifier = verifier::Verifier::new(password_checks)
        .map_err(|e| CliError::Runtime(format!("cannot start the password checks: {e}")))?;
    let limits = processors::Limits {
        process_timeout: config.session.process_timeout,
        exec_log_limit,
    };
    let authenticator = Users::new(users, anonymous, limits, verifier);
    let relay = bind_relay(config, authenticator)
        .await
        .map_err(runtime_error)?;
    let log = move |addrs: &std::io::Result<Vec<std::net::SocketAddr>>, spool: &std::path::Path| {
        for addr in addrs.iter().flatten() {
            tracing::info!(listen = %addr, passive_ports = %passive, spool = %spool.display(), ftps = %ftps, users = %summary, "ftprelay listening");
        }
    };
    Ok((relay, log))
}

fn runtime_error(error: std::io::Error) -> CliError {
    CliError::Runtime(error.to_string())
}

/// `name (processor), …`: who can log in and where their files go. Never
/// passwords.
fn users_summary(users: &[users::User], anonymous: Option<&processors::ProcessorSpec>) -> String {
    let mut parts: Vec<String> = users
        .iter()
        .map(|user| format!("{} ({})", user.name, user.processor))
        .collect();
    if let Some(spec) = anonymous {
        parts.push(format!("anonymous ({spec})"));
    }
    parts.join(", ")
}

/// Installs the SIGTERM and SIGINT handlers now (inside a tokio runtime),
/// before the relay says it listens: a signal right after start must stop it
/// gracefully, not kill it. The future resolves at the first signal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |installed: std::io::Result<tokio::signal::unix::Signal>| async move {
            match installed {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {}
            () = wait(interrupt) => {}
        }
        tracing::info!("signal received: finishing uploads in flight, then stopping");
    }
}

fn init_logging(verbose: u8, quiet: u8) {
    let level = match (i16::from(verbose) - i16::from(quiet)).clamp(-2, 2) {
        -2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
