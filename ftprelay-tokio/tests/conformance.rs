//! The conformance suite (`suite/`) with the relay on tokio.

#[path = "tokio/launch.rs"]
mod launch;
mod suite;

pub(crate) use ftprelay_tokio::proto;
pub(crate) use launch::launch;

mod on_tokio {
    crate::suite::conformance_tests!("tokio");
}
