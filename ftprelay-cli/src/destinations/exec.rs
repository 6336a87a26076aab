//! `--exec CMD`, `type = "exec"`.

use clap::Args;
use ftprelay_deliver::Command;
use serde::Deserialize;

use super::{Context, invalid};
use crate::error::CliError;

/// The `--exec` flag.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Destination: run `/bin/sh -c CMD` with the file as $1 (exit 0 means success).
    #[arg(long, value_name = "CMD")]
    pub(crate) exec: Option<String>,
    /// The most of an --exec command's output logged per upload; the rest is
    /// read, counted and dropped (lines are cut at 4 KiB) [default: 64K].
    #[arg(long, value_name = "BYTES", value_parser = crate::args::parse_size)]
    pub(crate) exec_log_limit: Option<u64>,
}

impl ExecArgs {
    pub(crate) fn entry(&self) -> Option<ExecEntry> {
        self.exec.clone().map(|command| ExecEntry { command })
    }
}

/// `[[destinations]] type = "exec"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecEntry {
    /// The shell command.
    pub(crate) command: String,
}

impl ExecEntry {
    pub(crate) fn build(&self, context: &Context) -> Result<Command, CliError> {
        if self.command.trim().is_empty() {
            return Err(invalid("the exec command is empty"));
        }
        Ok(Command::new(self.command.clone()).log_limit(context.exec_log_limit))
    }
}
