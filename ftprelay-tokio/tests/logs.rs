//! The log test of the suite, in a binary of its own: it installs the
//! global subscriber.

#[path = "tokio/launch.rs"]
mod launch;
/// The suite's support and its log test only (`suite/mod.rs` would bring
/// in the whole suite, unused here).
mod suite {
    pub(crate) mod logs;
    pub(crate) mod register;
    pub(crate) mod support;
}

pub(crate) use ftprelay_tokio::proto;
pub(crate) use launch::launch;

suite::logs::tests!("tokio");
