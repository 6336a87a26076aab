#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftprelay_proto::fuzzing::proxy_header(data));
