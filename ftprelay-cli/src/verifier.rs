//! Password hashes checked on a few threads of their own.
//!
//! An argon2 check costs 19 MiB and tens of milliseconds by design. Run on
//! whatever thread is free, a burst of failed logins costs 19 MiB each at
//! once (512 logins: 9.7 GiB), and the allocator keeps that memory per
//! thread afterwards. Here a fixed number of threads check one hash each at
//! a time, each in memory it keeps and reuses (freed and allocated again,
//! the allocator would spread it over its arenas and keep it all); the
//! other logins wait their turn, which is also a delay for a guesser.
//! Memory stays at one check per thread.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// One check: the PHC string, the password, where the verdict goes.
struct Job {
    phc: Arc<str>,
    password: Vec<u8>,
    verdict: smol::channel::Sender<bool>,
}

/// Logins that may wait for a check at once; beyond, a login is rejected
/// at once. Above any sane connection limit.
const MAX_WAITING: usize = 4096;

/// The threads that check password hashes.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    jobs: SyncSender<Job>,
}

impl Verifier {
    /// `threads` checking threads (at least one).
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = sync_channel(MAX_WAITING);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("ftprelay-argon2-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self { jobs })
    }

    /// Whether `password` matches the argon2 `phc` string. Waits for a free
    /// thread; `false` when the queue is full or the string is invalid.
    pub(crate) async fn verify(&self, phc: Arc<str>, password: Vec<u8>) -> bool {
        let (verdict, answer) = smol::channel::bounded(1);
        let job = Job {
            phc,
            password,
            verdict,
        };
        match self.jobs.try_send(job) {
            Ok(()) => answer.recv().await.unwrap_or(false),
            Err(TrySendError::Full(_)) => {
                tracing::warn!("too many logins wait for a password check: rejected");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    // Grown to the largest hash's memory cost, then reused.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match queue.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(job) => job,
            // The relay is gone.
            Err(_) => return,
        };
        // A login whose client left is not worth 19 MiB.
        if job.verdict.is_closed() {
            continue;
        }
        let matches = verify(&mut memory, &job.phc, &job.password).unwrap_or(false);
        let _ = job.verdict.try_send(matches);
    }
}

/// Whether `password` matches `phc`, computed in `memory`; `None` for a
/// string that is no valid argon2 hash.
fn verify(memory: &mut Vec<Block>, phc: &str, password: &[u8]) -> Option<bool> {
    let hash = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&hash).ok()?;
    let expected = hash.hash?;
    let mut salt = [0; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut computed = vec![0; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut computed, &mut memory[..blocks])
        .ok()?;
    // Output's equality takes the same time wherever the bytes differ.
    Some(Output::new(&computed).ok()? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    #[test]
    fn checks_and_rejects() {
        let salt = SaltString::encode_b64(b"a salt of sixteen").expect("salt");
        let phc: Arc<str> = Argon2::default()
            .hash_password(b"right", &salt)
            .expect("hash")
            .to_string()
            .into();
        let verifier = Verifier::new(2).expect("threads");
        smol::block_on(async {
            assert!(verifier.verify(phc.clone(), b"right".to_vec()).await);
            assert!(!verifier.verify(phc.clone(), b"wrong".to_vec()).await);
            assert!(
                !verifier
                    .verify("not a hash".into(), b"right".to_vec())
                    .await
            );
        });
    }
}
