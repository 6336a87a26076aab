//! Whether the file already at a taken remote name is the one being
//! stored: a delivery repeated (a queue retrying it after a crash, a
//! device sending the same file again) finds its own bytes there, and
//! counts as done instead of storing a second copy.
//!
//! The size comes first, from the `lstat` the name was found taken with:
//! only a regular file of the very size is read back, and compared with
//! the spool file a step at a time.

use std::path::Path;

use russh_sftp::client::SftpSession;
use russh_sftp::protocol::FileAttributes;
use tokio::io::AsyncReadExt as _;

/// The bytes compared at a time, of each side. russh-sftp reads ahead up
/// to 16 requests of at most 256 KiB: what a comparison holds is bounded
/// by that and this, whatever the file's size.
const STEP: usize = 64 * 1024;

/// Whether `path`, which `lstat` described as `found`, is a regular file
/// holding exactly the bytes of the local file `ours`. A file that cannot
/// be read back (gone meanwhile, not readable) is not ours; only reading
/// our own spool file can fail.
pub(super) async fn holds_our_bytes(
    sftp: &SftpSession,
    path: &str,
    found: &FileAttributes,
    ours: &Path,
) -> Result<bool, String> {
    let local = tokio::fs::File::open(ours)
        .await
        .map_err(|e| format!("reading the spooled file: {e}"))?;
    let size = local
        .metadata()
        .await
        .map_err(|e| format!("reading the spooled file: {e}"))?
        .len();
    // A link is another file (never followed), as a folder is.
    if !is_regular(found) || found.size != Some(size) {
        return Ok(false);
    }
    let Ok(remote) = sftp.open(path).await else {
        return Ok(false);
    };
    // What was opened is what was looked at: a regular file of that size.
    match remote.metadata().await {
        Ok(opened) if is_regular(&opened) && opened.size == Some(size) => {}
        _ => return Ok(false),
    }
    same_bytes(local, remote, size).await
}

/// Whether `attributes` are a regular file's: its type bits exactly
/// (`S_IFREG`). russh-sftp's own `is_regular` tests that the bits are
/// set, which those of a link and a socket also are.
fn is_regular(attributes: &FileAttributes) -> bool {
    const TYPE_BITS: u32 = 0o170_000;
    const REGULAR: u32 = 0o100_000;
    attributes.permissions.map(|mode| mode & TYPE_BITS) == Some(REGULAR)
}

/// Whether `local` and `remote` both hold `size` bytes, the same ones.
async fn same_bytes(
    mut local: tokio::fs::File,
    mut remote: russh_sftp::client::fs::File,
    size: u64,
) -> Result<bool, String> {
    let mut ours = vec![0; STEP];
    let mut theirs = vec![0; STEP];
    let mut at = 0u64;
    while at < size {
        let n = usize::try_from(size - at).map_or(STEP, |left| left.min(STEP));
        local
            .read_exact(&mut ours[..n])
            .await
            .map_err(|e| format!("reading the spooled file: {e}"))?;
        if remote.read_exact(&mut theirs[..n]).await.is_err() || ours[..n] != theirs[..n] {
            return Ok(false);
        }
        at += n as u64;
    }
    // Nothing after: the file did not grow since its size was read.
    let mut more = [0u8; 1];
    Ok(matches!(remote.read(&mut more).await, Ok(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_regular() {
        let with_mode = |mode: u32| FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        assert!(is_regular(&with_mode(0o100_644)));
        for other in [
            0o120_777, 0o140_755, 0o040_755, 0o010_644, 0o020_644, 0o060_644,
        ] {
            assert!(!is_regular(&with_mode(other)), "{other:o}");
        }
        assert!(!is_regular(&FileAttributes::empty()));
    }
}
