#![no_main]
// The first byte says where the working folder ends and the path begins.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b).min(data.len().saturating_sub(1)));
    let rest = data.get(1..).unwrap_or_default();
    let (cwd, path) = rest.split_at(split.min(rest.len()));
    ftprelay_proto::fuzzing::path_stays_beneath(cwd, path)
});
