//! Benchmarks of ftprelay: criterion benches of the core (`benches/core.rs`)
//! and, later, the end-to-end load generator.
