//! The conformance suite of `ftprelay-tokio/tests/suite/` (one source for
//! both adapters), with the relay on smol (one thread, and some of it on two) and on
//! async-std's executor.

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

/// The relay's tasks on two threads: the real clients, many sessions at
/// once, clients that fail, and TLS uploads.
mod on_smol_threads {
    crate::suite::clients::tests!("smol-threads");
    crate::suite::faults::tests!("smol-threads");
    crate::suite::passive::tests!("smol-threads");
    crate::suite::tls_uploads::tests!("smol-threads");
}
