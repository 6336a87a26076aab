//! The log test of the suite on smol, in a binary of its own: it installs
//! the global subscriber.

#[path = "smol/launch.rs"]
mod launch;
#[path = "../../ftprelay-tokio/tests/suite/mod.rs"]
mod suite;

pub(crate) use ftprelay_smol::proto;
pub(crate) use launch::launch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_the_transcript_without_the_password_and_a_line_per_upload() {
    suite::support::RUNTIME
        .scope(
            "smol",
            suite::logs::the_log_has_the_transcript_without_the_password_and_a_line_per_upload(),
        )
        .await
}
