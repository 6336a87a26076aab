//! pyftpdlib (PyPI), from a small script the load generator writes: its
//! asynchronous `FTPServer` (one process, epoll), the fastest of its
//! servers per its documentation, logging at WARNING (no line per command
//! or transfer), its own user table. FTPS through `TLS_FTPHandler`, which
//! needs pyOpenSSL.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::{PASSWORD, USER, apt_install, on_path, quiet};
use crate::certs::TlsFiles;

/// The server: `script PORT ROOT [CERT KEY]`.
const SCRIPT: &str = r#"import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.servers import FTPServer

port, root, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
logging.basicConfig(level=logging.WARNING)
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, root, perm="elradfmwMT")
if len(sys.argv) > 5:
    from pyftpdlib.handlers import TLS_FTPHandler as Handler
    Handler.certfile, Handler.keyfile = sys.argv[5], sys.argv[6]
else:
    from pyftpdlib.handlers import FTPHandler as Handler
Handler.authorizer = authorizer
# No passive_ports: the kernel picks each port (pyftpdlib builds and
# searches a list of the whole range for every transfer otherwise).
server = FTPServer(("127.0.0.1", port), Handler, backlog=1024)
server.max_cons = 0
server.max_cons_per_ip = 0
server.serve_forever(handle_exit=True)
"#;

/// Whether `python3` imports `modules`.
fn imports(modules: &str) -> bool {
    quiet(Command::new("python3").args(["-c", &format!("import {modules}")]))
}

/// `pip install` of `packages`, with `--break-system-packages` when the
/// Python is one that refuses otherwise (Debian's).
fn pip_install(packages: &[&str]) -> bool {
    let pip = |extra: &[&str]| {
        quiet(
            Command::new("python3")
                .args(["-m", "pip", "install", "--quiet"])
                .args(extra)
                .args(packages),
        )
    };
    pip(&[]) || pip(&["--break-system-packages"])
}

/// Installs pyftpdlib (and pyOpenSSL for FTPS) if needed; `false` when it
/// cannot run here.
pub(super) fn prepare() -> bool {
    if !on_path("python3") || !quiet(Command::new("python3").args(["-m", "pip", "--version"])) {
        eprintln!("loadgen: installing python3-pip (apt-get) for pyftpdlib");
        apt_install(&["python3", "python3-pip"]);
    }
    if !imports("pyftpdlib, OpenSSL") {
        eprintln!("loadgen: installing pyftpdlib and pyOpenSSL (pip) for the comparison");
        pip_install(&["pyftpdlib", "pyOpenSSL"]);
    }
    if !imports("pyftpdlib") {
        eprintln!("loadgen: pyftpdlib is not available; its rows are left out");
        return false;
    }
    true
}

/// Whether pyOpenSSL is there for `TLS_FTPHandler`.
pub(super) fn supports_tls() -> bool {
    static TLS: OnceLock<bool> = OnceLock::new();
    *TLS.get_or_init(|| imports("pyftpdlib.handlers, OpenSSL"))
}

/// pyftpdlib listening on `port`, storing into `root`.
pub(super) fn command(root: &Path, port: u16, tls: Option<&TlsFiles>) -> Command {
    // Not pyftpdlib.py: its directory comes first on the import path.
    let script = root.with_extension("server.py");
    std::fs::write(&script, SCRIPT).expect("pyftpdlib script");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .arg(port.to_string())
        .arg(root)
        .args([USER, PASSWORD]);
    if let Some(tls) = tls {
        command.arg(&tls.cert).arg(&tls.key);
    }
    command
}
