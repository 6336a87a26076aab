//! systemd: the readiness notification of `Type=notify` services, and
//! socket activation (listeners passed in `LISTEN_FDS`).

use std::net::{SocketAddr, TcpListener};

use crate::error::CliError;

/// The TCP listeners systemd (or `systemd-socket-activate`) passed to this
/// process, if any: they replace `--listen`. listenfd marks each
/// close-on-exec (the commands of `--exec` do not get them) and takes
/// `LISTEN_*` out of the environment. Anything else passed is bad
/// configuration.
pub(crate) fn inherited_listeners() -> Result<Vec<TcpListener>, CliError> {
    let mut passed = listenfd::ListenFd::from_env();
    (0..passed.len())
        .map(|index| {
            passed.take_tcp_listener(index).ok().flatten().ok_or_else(|| {
                CliError::Usage(format!(
                    "socket activation: the socket passed as fd {} is not a listening TCP socket",
                    index + 3
                ))
            })
        })
        .collect()
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

/// Nothing when `NOTIFY_SOCKET` is not set (sd-notify's own rule).
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
