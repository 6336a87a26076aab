//! What a destination tries when a name is taken: `name.jpg`, then
//! `name-1.jpg` … `name-9.jpg`, then names with a suffix no other upload
//! has. A camera that uploads `snapshot.jpg` forever costs a bounded number
//! of tries per upload (file-system calls, round trips), never a failure.

use std::sync::atomic::{AtomicU64, Ordering};

/// Names tried in sequence: the name itself, then `-1` … `-9`.
const SEQUENTIAL_NAMES: u32 = 10;
/// Then names with a unique suffix (the time and a counter).
const UNIQUE_NAMES: u32 = 8;

/// The suffixes to try, in order, before the extension: `""`, `-1` …
/// `-9`, then unique ones; 18 in all.
pub(crate) fn suffixes() -> impl Iterator<Item = String> {
    (0..SEQUENTIAL_NAMES + UNIQUE_NAMES).map(|attempt| match attempt {
        0 => String::new(),
        n if n < SEQUENTIAL_NAMES => format!("-{n}"),
        _ => unique_suffix(),
    })
}

/// `-<nanoseconds since 1970, hex>-<a counter of this process>`.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("-{nanos:x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_sequence_then_unique_suffixes() {
        let tried: Vec<String> = suffixes().collect();
        assert_eq!(tried.len(), 18);
        assert_eq!(tried[..3], ["", "-1", "-2"]);
        assert_eq!(tried[9], "-9");
        let mut unique = tried[10..].to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8);
    }
}
