//! Reading the small files a destination is configured with (credentials,
//! keys, known_hosts), bounded: a path given by mistake (`/dev/zero`, a log
//! file) is an error, not a start-up that hangs filling memory.

use std::io::{self, Read};
use std::path::Path;

/// The largest such file read: 4 MiB (a known_hosts of tens of thousands
/// of hosts).
pub(crate) const LIMIT: u64 = 4 << 20;

/// The text of `path`, at most [`LIMIT`] bytes; more is an error.
pub(crate) fn read(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(LIMIT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB: not a settings file", LIMIT >> 20),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_an_error() {
        let error = read(Path::new("/dev/zero")).expect_err("endless");
        // /dev/zero is NULs: not UTF-8 after the limit, or over it.
        assert!(
            matches!(error.kind(), io::ErrorKind::InvalidData),
            "{error}"
        );
        let dir = tempfile::tempdir().expect("dir");
        let small = dir.path().join("small");
        std::fs::write(&small, "[default]\n").expect("write");
        assert_eq!(read(&small).expect("read"), "[default]\n");
    }
}
