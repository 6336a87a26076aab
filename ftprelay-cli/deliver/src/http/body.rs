//! The request body: the spool file, streamed in chunks, never whole in
//! memory, and stopping once the delivery is given up on.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use futures_lite::Stream;
use tokio::io::AsyncReadExt as _;

/// The most of the file in memory at once, per request.
const CHUNK: usize = 64 * 1024;

/// Set when the delivery's future is dropped, finished or not.
///
/// The body is sent by the HTTP connection's own task, which a dropped
/// request does not stop at once; this flag does: the next chunk fails, so
/// no more of the file leaves after the device was told `451`.
#[derive(Debug, Default)]
pub(super) struct Cancelled(Arc<AtomicBool>);

impl Cancelled {
    fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The file at `path` of `size` bytes as a stream of chunks for
/// [`reqwest::Body::wrap_stream`]; it fails once `cancelled` is dropped, and
/// when the file is not `size` bytes long (the request announced that
/// length).
pub(super) async fn file(
    path: &Path,
    size: u64,
    cancelled: &Cancelled,
) -> io::Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static> {
    let file = tokio::fs::File::open(path).await?;
    let stop = cancelled.flag();
    Ok(futures_lite::stream::unfold(
        Some((file, size)),
        move |state| {
            let stop = stop.clone();
            async move {
                let (mut file, left) = state?;
                if left == 0 {
                    return None;
                }
                if stop.load(Ordering::Relaxed) {
                    let error = io::Error::other("the relay gave up on this delivery");
                    return Some((Err(error), None));
                }
                let want = usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK));
                let mut chunk = BytesMut::with_capacity(want);
                match file.read_buf(&mut chunk).await {
                    Ok(0) => {
                        let error = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the spool file is shorter than the upload",
                        );
                        Some((Err(error), None))
                    }
                    Ok(read) => {
                        let left = left.saturating_sub(read as u64);
                        Some((Ok(chunk.freeze()), Some((file, left))))
                    }
                    Err(error) => Some((Err(error), None)),
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::StreamExt as _;

    fn chunks(path: &Path, size: u64, cancel_after: Option<usize>) -> Vec<io::Result<Bytes>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let cancelled = Cancelled::default();
            let mut stream = Box::pin(file(path, size, &cancelled).await.expect("open"));
            let mut cancelled = Some(cancelled);
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                out.push(chunk);
                if Some(out.len()) == cancel_after {
                    cancelled.take();
                }
            }
            out
        })
    }

    #[test]
    fn the_file_is_streamed_in_bounded_chunks() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("body");
        let bytes: Vec<u8> = (0..CHUNK * 2 + 5).map(|n| n as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let got = chunks(&path, bytes.len() as u64, None);
        let mut joined = Vec::new();
        for chunk in got {
            let chunk = chunk.expect("chunk");
            assert!(chunk.len() <= CHUNK);
            joined.extend_from_slice(&chunk);
        }
        assert_eq!(joined, bytes);
    }

    #[test]
    fn a_cancelled_body_sends_no_more() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("body");
        std::fs::write(&path, vec![b'x'; CHUNK * 4]).expect("write");
        let got = chunks(&path, (CHUNK * 4) as u64, Some(1));
        assert_eq!(got.len(), 2, "one chunk, then the error");
        assert!(got[0].is_ok());
        assert!(got[1].is_err());
    }

    #[test]
    fn a_short_file_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("body");
        std::fs::write(&path, b"abc").expect("write");
        let got = chunks(&path, 10, None);
        assert_eq!(got.len(), 2);
        assert!(got[1].is_err());
    }
}
