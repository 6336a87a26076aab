//! Signals, on a thread of their own whatever the relay's runtime: SIGTERM
//! and SIGINT stop the relay (uploads in flight finish first), SIGHUP
//! reloads the certificate and key.

use std::path::PathBuf;

use ftprelay_tokio::Tls;

use crate::error::CliError;

/// Installs the handlers (before it returns: a signal that comes earlier
/// would kill the relay) and returns a future that resolves on SIGTERM or
/// SIGINT. `reload` is the TLS identity and the files SIGHUP reloads it
/// from.
pub(crate) fn handle(
    reload: Option<(Tls, (PathBuf, PathBuf))>,
) -> Result<impl Future<Output = ()> + Send + 'static, CliError> {
    let (signalled, stop) = smol::channel::bounded::<()>(1);
    let (installed, handlers_ready) = std::sync::mpsc::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot handle signals: {e}")))?;
    std::thread::Builder::new()
        .name("ftprelay-signals".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                let shutdown = shutdown_signal();
                if let Some((tls, (cert, key))) = reload {
                    tokio::spawn(reload_on_hangup(move || tls.reload_pem_files(&cert, &key)));
                }
                let _ = installed.send(());
                shutdown.await;
            });
            // Closing the channel stops the relay.
            drop(signalled);
        })
        .map_err(|e| CliError::Runtime(format!("cannot handle signals: {e}")))?;
    let _ = handlers_ready.recv();
    Ok(async move {
        let _ = stop.recv().await;
    })
}

/// SIGTERM or SIGINT. The handlers are installed when this is called.
fn shutdown_signal() -> impl Future<Output = ()> {
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

/// SIGHUP reloads the certificate and key: new connections get them,
/// sessions keep theirs. The handler is installed when this is called.
fn reload_on_hangup(
    reload: impl Fn() -> std::io::Result<()> + Send + 'static,
) -> impl Future<Output = ()> + Send {
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
