//! The webhook of the queue and metrics tests (tests/servers/hook_server.py),
//! whose health the test sets with flag files.

use std::time::Duration;

use serde_json::Value;

use super::ReportingServer;

/// The script.
const HOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/hook_server.py");

/// The webhook of tests/servers/hook_server.py, its health set by files.
pub struct Hook {
    pub server: ReportingServer,
    state: tempfile::TempDir,
    /// Its URL, with `{name}` for the file name.
    pub url: String,
}

impl Hook {
    pub fn start() -> Self {
        let state = tempfile::tempdir().expect("state");
        let server = ReportingServer::start(HOOK, &[state.path().as_os_str()]);
        Self {
            url: format!("http://127.0.0.1:{}/hook/{{name}}", server.port),
            server,
            state,
        }
    }

    /// Makes the hook answer as `health` says (`down`, `reject`, `hang`)
    /// while `on`.
    pub fn set(&self, health: &str, on: bool) {
        let flag = self.state.path().join(health);
        if on {
            std::fs::write(flag, b"").expect("flag");
        } else {
            std::fs::remove_file(flag).expect("unflag");
        }
    }

    /// The next report (within 20 s).
    pub fn next(&self) -> Value {
        self.server
            .next_within(Duration::from_secs(20), "request to the hook")
    }

    /// The next answered request with `status`, skipping others (within 20 s each).
    pub fn next_with_status(&self, status: u64) -> Value {
        loop {
            let report = self.next();
            if report["status"] == status {
                return report;
            }
        }
    }

    /// No further request arrives within `quiet`.
    pub fn assert_quiet(&self, quiet: Duration) {
        if let Ok(report) = self.server.reports.recv_timeout(quiet) {
            panic!("an unexpected request: {report}");
        }
    }
}
