//! How the suite starts a relay on tokio: a task of the test's runtime.

use crate::proto::RelayConfig;
use crate::suite::support::{Running, Users};

pub(crate) async fn launch(
    runtime: &str,
    config: RelayConfig,
    users: Users,
) -> std::io::Result<Running> {
    assert_eq!(
        runtime, "tokio",
        "this test binary runs relays on tokio only"
    );
    let relay = ftprelay_tokio::Relay::bind(config, users).await?;
    let addr = relay.local_addrs()?[0];
    let spool = relay.spool_dir().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.serve(async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr,
        spool,
        stop: Box::new(move || {
            let _ = stop.send(());
        }),
        done: Box::pin(async move { task.await.expect("the serve task") }),
    })
}
