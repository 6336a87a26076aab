//! `ftprelay`: a standalone FTP upload relay.
//!
//! The command line arrives with the CLI issue; until then the binary says so
//! and exits with status 2 instead of pretending to serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    #[allow(clippy::print_stderr)] // the one line a user sees
    {
        eprintln!(
            "ftprelay: the standalone relay is not built yet; use the ftprelay-tokio library"
        );
    }
    ExitCode::from(2)
}
