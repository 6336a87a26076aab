//! How the suite starts a relay on tokio: a task of the test's runtime.

use crate::proto::RelayConfig;
use crate::suite::support::{Running, Users};

pub(crate) async fn launch(
    runtime: &str,
    config: RelayConfig,
    users: Users,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> std::io::Result<Running> {
    assert_eq!(
        runtime, "tokio",
        "this test binary runs relays on tokio only"
    );
    let relay = match tls {
        Some((cert, key)) => {
            let tls = ftprelay_tokio::Tls::from_pem_files(&cert, &key)?;
            ftprelay_tokio::Relay::bind_with_tls(config, users, tls).await
        }
        None => ftprelay_tokio::Relay::bind(config, users).await,
    }?;
    let addrs = relay.local_addrs()?;
    let spool = relay.spool_dir().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.serve(async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr: addrs[0],
        implicit_addr: addrs.get(1).copied(),
        spool,
        stop: Box::new(move || {
            let _ = stop.send(());
        }),
        done: Box::pin(async move { task.await.expect("the serve task") }),
    })
}
