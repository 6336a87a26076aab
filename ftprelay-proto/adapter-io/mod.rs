//! The runtime-agnostic half of an adapter, shared by `ftprelay-tokio` and
//! `ftprelay-smol` (see `README.md` beside this file).

pub(crate) mod data_threads;
pub(crate) mod data_tls;
pub(crate) mod driver;
pub(crate) mod listen;
pub(crate) mod receive;
pub(crate) mod runtime;
#[cfg(target_os = "linux")]
pub(crate) mod splice;
pub(crate) mod spool;
pub(crate) mod state;
pub(crate) mod tls;
