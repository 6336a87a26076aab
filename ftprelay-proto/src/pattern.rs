//! The temporary-name patterns of the devices profile
//! ([`crate::Config::temporary_names`]).

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
