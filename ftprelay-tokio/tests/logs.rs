//! The log test of the suite, in a binary of its own: it installs the
//! global subscriber.

#[path = "tokio/launch.rs"]
mod launch;
mod suite;

pub(crate) use ftprelay_tokio::proto;
pub(crate) use launch::launch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_the_transcript_without_the_password_and_a_line_per_upload() {
    suite::support::RUNTIME
        .scope(
            "tokio",
            suite::logs::the_log_has_the_transcript_without_the_password_and_a_line_per_upload(),
        )
        .await
}
