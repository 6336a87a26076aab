#![no_main]
// The clock is read once per input, as the origin of the virtual clock.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftprelay_proto::fuzzing::split_independence(data, std::time::Instant::now()));
