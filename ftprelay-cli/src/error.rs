//! The errors of the command, each with its exit status.

use std::process::ExitCode;

/// Why `ftprelay` stops with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad input to the program: flags, files, configuration. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running (an address in use, say). Exit 1.
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Runtime(_) => ExitCode::from(1),
        }
    }
}
