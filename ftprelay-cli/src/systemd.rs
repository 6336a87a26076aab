//! systemd: the readiness notification of `Type=notify` services, and
//! socket activation (listeners passed in `LISTEN_FDS`).

use std::net::{SocketAddr, TcpListener};

use crate::error::CliError;

/// The TCP listeners systemd (or `systemd-socket-activate`) passed to this
/// process, if any: they replace `--listen`. Each is closed in the
/// commands the relay runs (`--exec`). Anything else passed is bad
/// configuration.
pub(crate) fn inherited_listeners() -> Result<Vec<TcpListener>, CliError> {
    let mut passed = listenfd::ListenFd::from_env();
    let mut listeners = Vec::with_capacity(passed.len());
    for index in 0..passed.len() {
        let listener = passed
            .take_tcp_listener(index)
            .ok()
            .flatten()
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "socket activation: the socket passed as fd {} is not a listening TCP socket",
                    index + 3
                ))
            })?;
        rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| CliError::Usage(format!("socket activation: {e}")))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Tells systemd the relay is ready (it listens on `addrs`); nothing when
/// it was not started as a `Type=notify` service.
pub(crate) fn ready(addrs: &[SocketAddr]) {
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let status = format!("listening on {}", addrs.join(", "));
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
}

/// Tells systemd the relay is stopping (finishing the uploads in flight).
pub(crate) fn stopping() {
    notify(&[sd_notify::NotifyState::Stopping]);
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
