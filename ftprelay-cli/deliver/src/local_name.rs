//! How a client's name is spelled as a name on this machine.
//!
//! The core hands over safe components ([`ftprelay_proto::path`]):
//! no separators, no leading dots, no NUL. What is left to decide here is
//! the spelling: bytes that are not UTF-8 and control characters become
//! `%XX`, deterministically and without collisions (two Latin-1 names never
//! map to one name, as U+FFFD would make them), and a name longer than a
//! file system allows is shortened keeping its extension.

/// The longest file name Linux file systems take, in bytes.
pub(crate) const MAX_NAME: usize = 255;

/// An extension longer than this is part of the stem when shortening.
const MAX_EXTENSION: usize = 32;

/// A client name spelled for this file system, in pieces that shortening
/// never splits (a character, or a `%XX` escape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalName {
    stem: Vec<String>,
    extension: Vec<String>,
}

impl LocalName {
    /// The spelling of `name`: valid UTF-8 stays as it is; a byte that is
    /// not, a control character, a separator, a leading dot and a `%` that
    /// would read as an escape become `%XX`. Never empty.
    pub(crate) fn new(name: &[u8]) -> Self {
        let mut pieces = Vec::new();
        let mut at = 0;
        for chunk in name.utf8_chunks() {
            for c in chunk.valid().chars() {
                let escape = c.is_control()
                    || matches!(c, '/' | '\\')
                    || (c == '.' && pieces.is_empty())
                    || (c == '%' && starts_with_hex_pair(&name[at + 1..]));
                if escape {
                    let mut bytes = [0; 4];
                    pieces.push(percent(c.encode_utf8(&mut bytes).as_bytes()));
                } else {
                    pieces.push(c.to_string());
                }
                at += c.len_utf8();
            }
            for &byte in chunk.invalid() {
                pieces.push(percent(&[byte]));
                at += 1;
            }
        }
        if pieces.is_empty() {
            pieces.push("upload".to_owned());
        }
        let dot = pieces.iter().rposition(|piece| piece == ".");
        let extension = match dot {
            Some(dot) if dot > 0 && pieces.len() - dot <= MAX_EXTENSION => pieces.split_off(dot),
            _ => Vec::new(),
        };
        Self {
            stem: pieces,
            extension,
        }
    }

    /// The name with `suffix` (`-1`, `-2`, …: a collision) before the
    /// extension, at most [`MAX_NAME`] bytes: the stem is shortened first.
    pub(crate) fn spelled(&self, suffix: &str) -> String {
        let tail: usize = suffix.len() + self.extension.iter().map(String::len).sum::<usize>();
        let mut name = String::new();
        for piece in &self.stem {
            if name.len() + piece.len() + tail > MAX_NAME {
                break;
            }
            name.push_str(piece);
        }
        name.push_str(suffix);
        for piece in &self.extension {
            if name.len() + piece.len() > MAX_NAME {
                break;
            }
            name.push_str(piece);
        }
        name
    }

    /// The name without its extension, shortened as [`Self::spelled`]
    /// would shorten it.
    pub(crate) fn stem(&self) -> String {
        let full = self.spelled("");
        let extension: usize = self.extension.iter().map(String::len).sum();
        full[..full.len().saturating_sub(extension).min(full.len())].to_owned()
    }

    /// The extension without its dot; empty when there is none.
    pub(crate) fn extension(&self) -> String {
        self.extension.iter().skip(1).map(String::as_str).collect()
    }
}

fn starts_with_hex_pair(rest: &[u8]) -> bool {
    matches!(rest, [a, b, ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit())
}

fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn local(name: &[u8]) -> String {
        LocalName::new(name).spelled("")
    }

    #[test]
    fn spellings() {
        assert_eq!(local(b"scan 1.pdf"), "scan 1.pdf");
        assert_eq!(local("Überweisung.pdf".as_bytes()), "Überweisung.pdf");
        assert_eq!(local(b"caf\xE9.jpg"), "caf%E9.jpg");
        assert_eq!(local(b"caf%E9.jpg"), "caf%25E9.jpg");
        assert_eq!(local(b"100%.jpg"), "100%.jpg");
        assert_eq!(local(b"a\x1b[31m.txt"), "a%1B[31m.txt");
        assert_eq!(local(b".hidden"), "%2Ehidden");
        assert_eq!(local(b"a/b\\c"), "a%2Fb%5Cc");
        assert_eq!(local(b""), "upload");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.jpeg", "x".repeat(400));
        let spelled = local(long.as_bytes());
        assert_eq!(spelled.len(), MAX_NAME);
        assert!(spelled.ends_with("xx.jpeg"), "{spelled}");
        let with_suffix = LocalName::new(long.as_bytes()).spelled("-12");
        assert_eq!(with_suffix.len(), MAX_NAME);
        assert!(with_suffix.ends_with("x-12.jpeg"), "{with_suffix}");
        // Escapes and characters are never cut in half.
        let wide = "é".repeat(200);
        let spelled = local(wide.as_bytes());
        assert!(spelled.len() <= MAX_NAME && spelled.chars().all(|c| c == 'é'));
        let escapes = vec![0xE9; 200];
        let spelled = local(&escapes);
        assert_eq!(spelled.len(), 255);
        assert!(spelled.ends_with("%E9"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Short names never collide, and every spelling is one name.
        #[test]
        fn spellings_are_injective_and_single_names(
            a in prop::collection::vec(any::<u8>(), 0..40),
            b in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let (la, lb) = (local(&a), local(&b));
            if a != b && !a.is_empty() && !b.is_empty() {
                prop_assert_ne!(&la, &lb);
            }
            for spelled in [&la, &lb] {
                prop_assert!(!spelled.is_empty() && spelled.len() <= MAX_NAME);
                prop_assert!(!spelled.starts_with('.'));
                prop_assert!(!spelled.contains(['/', '\\', '\0']));
                prop_assert!(!spelled.chars().any(char::is_control));
                let path = std::path::Path::new("/base").join(spelled);
                prop_assert_eq!(path.parent(), Some(std::path::Path::new("/base")));
            }
        }
    }
}
