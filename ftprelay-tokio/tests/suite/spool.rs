//! The spool directory as something hostile may have prepared it: a shared
//! directory where another user planted links, FIFOs or devices. Nothing
//! planted is followed, opened or created through.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::support::{Running, Users, config, launch};
use crate::proto::RelayConfig;

super::register::suite_tests!(
    spool,
    a_symbolic_link_at_the_lock_path_is_refused_and_creates_nothing(async {
        let dir = tempfile::tempdir().expect("dir");
        let elsewhere = tempfile::tempdir().expect("dir");
        let target = elsewhere.path().join("created-through-the-link");
        std::os::unix::fs::symlink(&target, dir.path().join(LOCK)).expect("symlink");
        let error = launch_on(dir.path()).await.err().expect("refused");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        assert!(!target.exists(), "the link's target was created");
    }),
    a_fifo_at_the_lock_path_is_refused_without_hanging(async {
        let dir = tempfile::tempdir().expect("dir");
        mkfifo(&dir.path().join(LOCK));
        let error = launch_on(dir.path()).await.err().expect("refused");
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }),
    the_sweep_unlinks_a_planted_link_named_like_a_spool_file_and_never_follows_it(async {
        let dir = tempfile::tempdir().expect("dir");
        let elsewhere = tempfile::tempdir().expect("dir");
        let target = elsewhere.path().join("precious");
        std::fs::write(&target, b"not the relay's").expect("write");
        let link = dir.path().join(".ftprelay-spool-planted");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let fifo = dir.path().join(".ftprelay-spool-fifo");
        mkfifo(&fifo);
        let relay = launch_on(dir.path()).await.expect("bind");
        assert_eq!(
            std::fs::read(&target).expect("the target survives"),
            b"not the relay's"
        );
        assert!(
            std::fs::symlink_metadata(&link).is_err(),
            "the planted link is still in the spool"
        );
        assert!(
            std::fs::symlink_metadata(&fifo).is_err(),
            "the planted FIFO is still in the spool"
        );
        relay.shut_down().await;
    }),
    the_private_spool_directory_is_0700(async {
        let mut config = config();
        config.spool_dir = None;
        let users = Users {
            record: Default::default(),
        };
        let relay = launch(config, users).await.expect("bind");
        let mode = std::fs::metadata(&relay.spool)
            .expect("the spool")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
        relay.shut_down().await;
    }),
    a_planted_fifo_lock_in_the_temp_dir_does_not_hang_the_start(async {
        // The default spool's start sweeps the temp dir for crashed relays'
        // spools: one with a FIFO for its lock is not a relay's, and must not be
        // opened (that would block for ever).
        let temp = std::env::temp_dir();
        let planted = tempfile::Builder::new()
            .prefix("ftprelay-planted-")
            .tempdir_in(&temp)
            .expect("dir");
        mkfifo(&planted.path().join(LOCK));
        let mut config = config();
        config.spool_dir = None;
        let relay = bounded_launch(config, &planted.path().join(LOCK))
            .await
            .expect("bind");
        assert!(
            planted.path().join(LOCK).exists(),
            "a foreign entry was removed"
        );
        relay.shut_down().await;
    }),
);

const LOCK: &str = ".ftprelay-spool.lock";

/// Binds a relay on `dir`, bounded: a start-up that hangs fails the test.
async fn launch_on(dir: &Path) -> std::io::Result<Running> {
    let mut config = config();
    config.spool_dir = Some(dir.to_owned());
    bounded_launch(config, &dir.join(LOCK)).await
}

/// Binds a relay on a task of its own, for at most 10 s. If the start-up
/// hangs (a FIFO opened for writing blocks its thread), `fifo` is opened
/// for reading to release the thread, then the test fails.
async fn bounded_launch(config: RelayConfig, fifo: &Path) -> std::io::Result<Running> {
    let users = Users {
        record: Default::default(),
    };
    let runtime = super::support::RUNTIME.get();
    let mut started = tokio::spawn(crate::launch(runtime, config, users, None));
    match tokio::time::timeout(Duration::from_secs(10), &mut started).await {
        Ok(joined) => joined.expect("the start-up panicked"),
        Err(_) => {
            let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
            let _reader = rustix::fs::open(fifo, flags, rustix::fs::Mode::empty());
            let _ = started.await;
            panic!("the start-up hung on {}", fifo.display());
        }
    }
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}
