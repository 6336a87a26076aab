//! The temporary-name patterns of the devices profile
//! ([`crate::Config::temporary_names`]).

/// Whether `name` matches a glob `pattern` in which `*` stands for any run
/// of bytes (case-insensitive for ASCII). Linear in the name for each star
/// of the pattern: after a mismatch only the last star is moved on (the
/// classic greedy match), so a long name a client chose costs no
/// backtracking over every earlier star.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // The last star seen, and where in the name its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if c.eq_ignore_ascii_case(&name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // The star takes one more byte; try the rest again.
                Some((star_p, star_n)) => {
                    star = Some((star_p, star_n + 1));
                    p = star_p + 1;
                    n = star_n + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_stars_and_a_long_name_cost_no_backtracking() {
        // Backtracking over every star took 200^4 steps here.
        let name = "a".repeat(200);
        assert!(!matches(b"*a*a*a*a*b", name.as_bytes()));
        assert!(matches(b"*a*a*a*a*", name.as_bytes()));
        let long = format!("{}_tmp.jpg", "x".repeat(4000));
        assert!(matches(b"*_tmp.*", long.as_bytes()));
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
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "", false),
            ("*a*b", "xaxxb", true),
            ("*a*b", "xaxxbc", false),
        ] {
            assert_eq!(
                matches(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} {name}"
            );
        }
    }
}
