//! Who may log in, and which processor each login gets.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use ftprelay_tokio::proto::{Authenticator, Login, LoginRejected};

use crate::destinations::Processor;
use crate::verifier::Verifier;
use ftprelay_deliver::Destinations;

/// How a user proves who they are.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// A plain password (from `--user`, or `password` in the config file).
    Password(String),
    /// An argon2id PHC string (from `--users`, or `password_hash`).
    Hash(Arc<str>),
}

/// One configured user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) credential: Credential,
    pub(crate) processor: Destinations,
    /// This user's profile, if not the relay's.
    pub(crate) profile: Option<ftprelay_tokio::proto::Profile>,
}

/// The authenticator of the standalone relay.
#[derive(Debug)]
pub(crate) struct Users {
    by_name: HashMap<Vec<u8>, User>,
    /// `anonymous` and `ftp` with any password, if enabled.
    anonymous: Option<Destinations>,
    verifier: Verifier,
    /// Whether any user has a hash: only then is an unknown name checked
    /// against [`DUMMY_HASH`] (with plain passwords alone, a wrong name and
    /// a wrong password cost the same: nothing).
    has_hashes: bool,
    /// Store and forward: every processor queues into it.
    queue: Option<ftprelay_deliver::Queue>,
}

/// Verified against when the user name is unknown, so that an unknown name
/// takes as long to reject as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4kKKbbLDLE0tFPjt7aLUvO5N8pS8A63WgfC2o7NYyBk";

impl Users {
    pub(crate) fn new(
        users: Vec<User>,
        anonymous: Option<Destinations>,
        verifier: Verifier,
        queue: Option<ftprelay_deliver::Queue>,
    ) -> Self {
        let has_hashes = users
            .iter()
            .any(|user| matches!(user.credential, Credential::Hash(_)));
        let by_name = users
            .into_iter()
            .map(|user| (user.name.as_bytes().to_vec(), user))
            .collect();
        Self {
            by_name,
            anonymous,
            verifier,
            has_hashes,
            queue,
        }
    }
}

impl Authenticator for Users {
    type Processor = Processor;

    async fn authenticate(&self, login: &Login) -> Result<Processor, LoginRejected> {
        if let (Some(spec), b"anonymous" | b"ftp") = (&self.anonymous, login.user()) {
            return Ok(Processor::new(spec.clone(), None, self.queue.clone()));
        }
        let user = self.by_name.get(login.user());
        let credential = user.map(|u| u.credential.clone());
        let password = login.password().to_vec();
        let accepted = match credential {
            Some(Credential::Password(expected)) => {
                constant_time_eq(expected.as_bytes(), &password)
            }
            Some(Credential::Hash(phc)) => self.verifier.verify(phc, password).await,
            None if self.has_hashes => {
                self.verifier.verify(DUMMY_HASH.into(), password).await;
                false
            }
            None => false,
        };
        match user {
            Some(user) if accepted => Ok(Processor::new(
                user.processor.clone(),
                user.profile,
                self.queue.clone(),
            )),
            _ => Err(LoginRejected),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks that `text` is an argon2id PHC string.
pub(crate) fn check_hash(text: &str) -> Result<(), String> {
    let hash = PasswordHash::new(text).map_err(|e| format!("not a PHC hash string ({e})"))?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "the hash is {}, expected argon2id (make one with `ftprelay hash-password`)",
            hash.algorithm
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        assert_eq!(check_hash(DUMMY_HASH), Ok(()));
    }

    #[test]
    fn hashes_must_be_argon2id() {
        assert!(
            check_hash("$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$YWJjZGVmZ2hpamtsbW5vcA").is_err()
        );
        assert!(check_hash("plain").is_err());
    }

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
