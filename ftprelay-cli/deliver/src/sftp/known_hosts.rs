//! The server's key, pinned in an OpenSSH `known_hosts` file: what `ssh`
//! itself would accept, and nothing else.
//!
//! Lines are matched as OpenSSH matches them: comma-separated host
//! patterns with `*` and `?`, a `!pattern` that excludes the line, a
//! non-default port written `[host]:port`, hashed names (`|1|salt|hash`,
//! what Debian's `ssh` writes by default), `@revoked` keys. `@cert-authority`
//! lines are skipped: host certificates are not asked for. A line that
//! cannot be parsed is skipped, as `ssh` skips it.

use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};

/// What a `known_hosts` file says of a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key is recorded for the host.
    Known,
    /// The file has keys for the host, but not this one: the host key
    /// changed, or someone is in the middle.
    Changed {
        /// The (1-based) lines of the recorded keys.
        lines: Vec<usize>,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// The (1-based) line.
        line: usize,
    },
    /// Nothing is recorded for the host.
    Unknown,
}

/// The entries of a `known_hosts` file.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownHosts {
    entries: Vec<(usize, Entry)>,
    skipped: usize,
}

impl KnownHosts {
    /// The entries of `text`; unparsable lines are skipped (and counted).
    pub(crate) fn parse(text: &str) -> Self {
        let mut known = Self::default();
        for (at, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Fields may be separated by any run of blanks; the parser
            // wants one space.
            let normalised = line.split_whitespace().collect::<Vec<_>>().join(" ");
            match normalised.parse::<Entry>() {
                Ok(entry) => known.entries.push((at + 1, entry)),
                Err(_) => known.skipped += 1,
            }
        }
        known
    }

    /// Lines that could not be parsed.
    pub(crate) fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether `key` is the key of `name` (a [`host_name`]).
    pub(crate) fn check(&self, name: &str, key: &PublicKey) -> Verdict {
        let mut recorded = Vec::new();
        for (line, entry) in &self.entries {
            if !matches(entry.host_patterns(), name) {
                continue;
            }
            let same = entry.public_key().key_data() == key.key_data();
            match entry.marker() {
                Some(Marker::Revoked) if same => return Verdict::Revoked { line: *line },
                Some(_) => {}
                None if same => return Verdict::Known,
                None => recorded.push(*line),
            }
        }
        if recorded.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Changed { lines: recorded }
        }
    }

    /// The host-key algorithms of the keys recorded for `name`, in the
    /// order of the file: asked of the server first, so that a server with
    /// several keys presents the one that is pinned.
    pub(crate) fn algorithms(&self, name: &str) -> Vec<Algorithm> {
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for (_, entry) in &self.entries {
            if entry.marker().is_some() || !matches(entry.host_patterns(), name) {
                continue;
            }
            let found = match entry.public_key().algorithm() {
                // An RSA key signs with SHA-2 (rsa-sha2-512, -256), never
                // SHA-1.
                Algorithm::Rsa { .. } => vec![
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha512),
                    },
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha256),
                    },
                ],
                other => vec![other],
            };
            for algorithm in found {
                if !algorithms.contains(&algorithm) {
                    algorithms.push(algorithm);
                }
            }
        }
        algorithms
    }
}

/// How `known_hosts` names a server: `host` on port 22, `[host]:port`
/// on any other.
pub(crate) fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Whether `name` is one of `patterns`: a hashed name, or a list where no
/// negated pattern matches and some pattern does.
fn matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
            ring::hmac::verify(&key, name.as_bytes(), hash).is_ok()
        }
        HostPatterns::Patterns(list) => {
            let name = name.to_ascii_lowercase();
            let mut found = false;
            for pattern in list {
                let pattern = pattern.to_ascii_lowercase();
                match pattern.strip_prefix('!') {
                    Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
                    Some(_) => {}
                    None => found |= glob(pattern.as_bytes(), name.as_bytes()),
                }
            }
            found
        }
    }
}

/// `*` (any run) and `?` (any one byte) against the whole of `text`:
/// linear, the last star's position retried (the patterns are the
/// operator's, the names short).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
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

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSzkQgN8GqstvQFyvoFbVO9ScJU/yVltJvSpXln+Hks";
    const OTHER: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC5Hmp/LeodzJP5i+G4CgqCK0Jo3rdQveAOCwhfTY9tB";

    fn key(text: &str) -> PublicKey {
        text.parse().expect("a public key")
    }

    #[test]
    fn names_on_other_ports_are_bracketed() {
        assert_eq!(host_name("sftp.example.org", 22), "sftp.example.org");
        assert_eq!(host_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn a_recorded_key_is_known_and_another_is_a_change() {
        let file = format!("# comment\n\nbad line\nsftp.example.org,10.0.0.5 {ED25519} root@x\n");
        let known = KnownHosts::parse(&file);
        assert_eq!(known.skipped(), 1);
        assert_eq!(
            known.check("sftp.example.org", &key(ED25519)),
            Verdict::Known
        );
        assert_eq!(known.check("10.0.0.5", &key(ED25519)), Verdict::Known);
        assert_eq!(
            known.check("10.0.0.5", &key(OTHER)),
            Verdict::Changed { lines: vec![4] }
        );
        assert_eq!(
            known.check("[10.0.0.5]:2222", &key(ED25519)),
            Verdict::Unknown
        );
        assert_eq!(
            known.algorithms("10.0.0.5"),
            vec![Algorithm::Ed25519],
            "the pinned key's algorithm is asked for"
        );
    }

    #[test]
    fn patterns_negations_ports_and_tabs() {
        let file =
            format!("*.example.org,!evil.example.org\t{ED25519}\n[127.0.0.1]:2222 {OTHER}\n");
        let known = KnownHosts::parse(&file);
        assert_eq!(known.check("a.example.org", &key(ED25519)), Verdict::Known);
        assert_eq!(known.check("A.Example.ORG", &key(ED25519)), Verdict::Known);
        assert_eq!(
            known.check("evil.example.org", &key(ED25519)),
            Verdict::Unknown
        );
        assert_eq!(known.check("[127.0.0.1]:2222", &key(OTHER)), Verdict::Known);
        assert_eq!(known.check("127.0.0.1", &key(OTHER)), Verdict::Unknown);
    }

    #[test]
    fn hashed_names_and_revoked_keys() {
        // As `ssh-keygen -H` hashes "[127.0.0.1]:2222".
        let salt = b"0123456789abcdefghij";
        let hmac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt),
            b"[127.0.0.1]:2222",
        );
        use russh::keys::ssh_encoding::base64::{Base64, Encoding as _};
        let line = format!(
            "|1|{}|{} {ED25519}\n@revoked * {OTHER}\n",
            Base64::encode_string(salt),
            Base64::encode_string(hmac.as_ref())
        );
        let known = KnownHosts::parse(&line);
        assert_eq!(known.skipped(), 0);
        assert_eq!(
            known.check("[127.0.0.1]:2222", &key(ED25519)),
            Verdict::Known
        );
        assert_eq!(known.check("127.0.0.1", &key(ED25519)), Verdict::Unknown);
        assert_eq!(
            known.check("[127.0.0.1]:2222", &key(OTHER)),
            Verdict::Revoked { line: 2 }
        );
    }

    #[test]
    fn globs() {
        assert!(glob(b"*", b""));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"*.example.org", b"x.y.example.org"));
        assert!(!glob(b"*.example.org", b"example.org"));
        assert!(glob(b"[10.0.0.*]:22*", b"[10.0.0.5]:2222"));
        assert!(!glob(b"ab", b"abc"));
    }
}
