//! The conformance suite: every interoperability and fault test, written
//! once, run against every adapter. A test binary that includes this module
//! defines `launch` (how to start a relay on each runtime it tests) and
//! `proto` (the core, as its adapter re-exports it), then calls
//! `conformance_tests!("runtime name")` once per runtime, each in a module of
//! its own.
//!
//! Each file writes its tests inside one `register::suite_tests!`, which
//! also lists them for `conformance_tests!`: see `register.rs`.

#![allow(unreachable_pub)]
// A test function written outside its file's `suite_tests!`, or a file whose
// `tests!` is missing below, is never called: the build fails rather than
// the test silently never running. (`support` allows dead code: each binary
// uses part of it.)
#![deny(dead_code)]

pub mod clients;
pub mod devices;
pub mod faults;
pub mod hostile;
pub mod passive;
pub mod queue;
pub mod register;
pub mod spool;
pub mod support;
pub mod tls;
pub mod tls_data;
pub mod tls_uploads;

/// One `#[tokio::test]` per test of the suite, each run with the relay on
/// `$runtime` (the test clients always run on tokio). `logs.rs` is not
/// here: its test installs the global subscriber, so it has binaries of its
/// own (`tests/logs.rs`).
macro_rules! conformance_tests {
    ($runtime:expr) => {
        $crate::suite::clients::tests!($runtime);
        $crate::suite::devices::tests!($runtime);
        $crate::suite::faults::tests!($runtime);
        $crate::suite::hostile::tests!($runtime);
        $crate::suite::passive::tests!($runtime);
        $crate::suite::queue::tests!($runtime);
        $crate::suite::spool::tests!($runtime);
        $crate::suite::tls::tests!($runtime);
        $crate::suite::tls_data::tests!($runtime);
        $crate::suite::tls_uploads::tests!($runtime);
    };
}
pub(crate) use conformance_tests;
