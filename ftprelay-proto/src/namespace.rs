//! The devices profile's virtual namespace: paths resolved in memory, never
//! on a file system.

use bytes::{BufMut, Bytes, BytesMut};

/// `path` resolved against the working directory `cwd` (components):
/// absolute when it starts with a separator; `/` and `\\` both separate
/// (devices configured with Windows paths send backslashes); `.` and empty
/// components vanish; `..` climbs, and stops at the root.
pub(crate) fn resolve(cwd: &[Bytes], path: &Bytes) -> Vec<Bytes> {
    let separator = |b: &u8| *b == b'/' || *b == b'\\';
    let mut components: Vec<Bytes> = if path.first().is_some_and(separator) {
        Vec::new()
    } else {
        cwd.to_vec()
    };
    for part in path.split(separator) {
        match part {
            b"" | b"." => {}
            b".." => {
                components.pop();
            }
            name => components.push(path.slice_ref(name)),
        }
    }
    components
}

/// The absolute path of `components`: `/a/b`, or `/` for the root.
pub(crate) fn display(components: &[Bytes]) -> Bytes {
    if components.is_empty() {
        return Bytes::from_static(b"/");
    }
    let mut out = BytesMut::new();
    for component in components {
        out.put_u8(b'/');
        out.extend_from_slice(component);
    }
    out.freeze()
}

/// Whether `name` matches a glob `pattern` in which `*` stands for any run
/// of bytes (case-insensitive for ASCII).
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| matches(rest, &name[skip..])),
        Some((first, rest)) => name.split_first().is_some_and(|(n, name_rest)| {
            n.eq_ignore_ascii_case(first) && matches(rest, name_rest)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(components: &[Bytes]) -> String {
        String::from_utf8(display(components).to_vec()).expect("ascii")
    }

    #[test]
    fn resolution() {
        let cwd = resolve(&[], &Bytes::from_static(b"/NVR01/2024"));
        assert_eq!(path(&cwd), "/NVR01/2024");
        assert_eq!(
            path(&resolve(&cwd, &Bytes::from_static(b"ch1//x.jpg"))),
            "/NVR01/2024/ch1/x.jpg"
        );
        assert_eq!(
            path(&resolve(&cwd, &Bytes::from_static(b"../../../x"))),
            "/x"
        );
        assert_eq!(
            path(&resolve(&cwd, &Bytes::from_static(b"\\\\cam\\\\a.jpg"))),
            "/cam/a.jpg"
        );
        assert_eq!(path(&resolve(&cwd, &Bytes::from_static(b"/"))), "/");
        assert_eq!(
            path(&resolve(&cwd, &Bytes::from_static(b"./."))),
            "/NVR01/2024"
        );
    }

    #[test]
    fn temporary_name_patterns() {
        for (pattern, name, expected) in [
            ("*.tmp", "upload.TMP", true),
            ("*.tmp", "upload.tmp.jpg", false),
            ("*_tmp.*", "camera_tmp.jpg", true),
            (".in.*", ".in.scan.pdf.", true),
            (".in.*", "scan.in.pdf", false),
            ("*.part", "a.part", true),
        ] {
            assert_eq!(
                matches(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} {name}"
            );
        }
    }
}
