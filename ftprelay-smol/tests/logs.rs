//! The log test of the suite on smol, in a binary of its own: it installs
//! the global subscriber.

#[path = "smol/launch.rs"]
mod launch;
/// The suite's support and its log test only (`suite/mod.rs` would bring
/// in the whole suite, unused here).
#[path = "../../ftprelay-tokio/tests/suite"]
mod suite {
    pub(crate) mod logs;
    pub(crate) mod register;
    pub(crate) mod support;
}

pub(crate) use ftprelay_smol::proto;
pub(crate) use launch::launch;

suite::logs::tests!("smol");
