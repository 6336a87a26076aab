//! The conformance suite of `ftprelay-tokio/tests/suite/` (one source for
//! both adapters), with the relay on smol and on async-std's executor.

#[path = "smol/launch.rs"]
mod launch;
#[path = "../../ftprelay-tokio/tests/suite/mod.rs"]
mod suite;

pub(crate) use ftprelay_smol::proto;
pub(crate) use launch::launch;

mod on_smol {
    crate::suite::conformance_tests!("smol");
}

mod on_async_std {
    crate::suite::conformance_tests!("async-std");
}
