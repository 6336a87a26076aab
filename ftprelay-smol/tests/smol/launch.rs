//! How the suite starts a relay on smol, or on async-std's executor: a
//! thread of its own that blocks on `serve` with that runtime's
//! `block_on`. The test's clients stay on tokio.

use crate::proto::RelayConfig;
use crate::suite::support::{Running, Users};

pub(crate) async fn launch(
    runtime: &str,
    config: RelayConfig,
    users: Users,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> std::io::Result<Running> {
    let on_async_std = match runtime {
        "smol" => false,
        "async-std" => true,
        other => panic!("this test binary does not run relays on {other}"),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    std::thread::spawn(move || {
        let serve = async move {
            let relay = match match tls {
                Some((cert, key)) => {
                    let tls = ftprelay_smol::Tls::from_pem_files(&cert, &key)?;
                    ftprelay_smol::Relay::bind_with_tls(config, users, tls).await
                }
                None => ftprelay_smol::Relay::bind(config, users).await,
            } {
                Ok(relay) => relay,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return Ok(());
                }
            };
            let started = relay
                .local_addrs()
                .map(|a| (a, relay.spool_dir().to_owned()));
            let _ = ready_tx.send(started);
            relay
                .serve(async move {
                    let _ = stop_rx.recv().await;
                })
                .await
        };
        let served = if on_async_std {
            async_std::task::block_on(serve)
        } else {
            smol::block_on(serve)
        };
        let _ = done_tx.send(served);
    });
    let (addrs, spool) = ready_rx.await.expect("the relay thread reports")?;
    Ok(Running {
        addr: addrs[0],
        implicit_addr: addrs.get(1).copied(),
        spool,
        // Closing the channel resolves the shutdown future.
        stop: Box::new(move || drop(stop_tx)),
        done: Box::pin(async move { done_rx.await.expect("the relay thread ends") }),
    })
}
