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

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use ftprelay_tokio::Relay;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, RunArgs};
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
            // One line, not clap's usage block: the first line says it all.
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("ftprelay: {}", first.trim_start_matches("error: "));
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> Result<(), CliError> {
    let Settings {
        relay: config,
        users,
        anonymous,
    } = settings;
    let summary = users_summary(&users, anonymous.as_deref());
    let passive = config
        .passive_ports
        .map_or("any".to_owned(), |p| format!("{}-{}", p.first(), p.last()));
    let authenticator = Users::new(users, anonymous, config.session.process_timeout);
    let relay = Relay::bind(config, authenticator)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let spool = relay.spool_dir().display().to_string();
    for addr in relay
        .local_addrs()
        .map_err(|e| CliError::Runtime(e.to_string()))?
    {
        tracing::info!(listen = %addr, passive_ports = %passive, spool = %spool, users = %summary, "ftprelay listening");
    }
    relay
        .serve(shutdown_signal())
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    tracing::info!("stopped");
    Ok(())
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

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("signal received: finishing uploads in flight, then stopping");
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
