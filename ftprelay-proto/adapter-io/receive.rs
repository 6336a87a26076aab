//! Passive listeners, and receiving an upload into its spool file.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proto::{PassivePorts, SpoolFailure, TransferEnd};

use super::data_threads;
use super::runtime::{BoxFuture, Runtime};
use super::spool::SpoolFile;

/// How much of an upload is read from the socket at once. Large reads mean
/// few wake-ups and few writes for big files.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// The first bytes of every upload are read into a buffer this big on the
/// copying thread's stack.
const SMALL_UPLOAD_BUFFER: usize = 16 * 1024;

/// Binds a passive listener on `ip`: on a port of `ports` (each tried once,
/// from a place that moves with `turn`), or on any port when there is no
/// range. `None` when every port of the range is taken. Binding is the only
/// race-free test of whether a port is free.
pub(crate) fn bind_passive(
    ip: IpAddr,
    ports: Option<PassivePorts>,
    turn: u64,
) -> io::Result<Option<std::net::TcpListener>> {
    let Some(ports) = ports else {
        return std::net::TcpListener::bind(SocketAddr::new(ip, 0)).map(Some);
    };
    for port in ports.candidates(turn) {
        match std::net::TcpListener::bind(SocketAddr::new(ip, port)) {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Streams `data` into `spool` until the client closes it cleanly, more
/// than `max_size` bytes arrive, nothing arrives for `stall_timeout`, or
/// something fails. The spool file is returned only when the upload is
/// complete; otherwise it is dropped, and so deleted.
///
/// The bytes are copied by a data thread (see `data_threads`) with plain
/// `read`/`write` calls: measured against async file writes (a thread hop
/// per write), it halves the CPU per GiB. Dropping the returned
/// future (ABOR, a lost control connection) shuts the socket down, which
/// ends the thread, and unlinks the spool file at once.
pub(crate) fn receive<R: Runtime>(
    runtime: &R,
    data: R::Data,
    mut spool: SpoolFile,
    max_size: u64,
    stall_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> BoxFuture<(TransferEnd, Option<SpoolFile>)> {
    let prepared = blocking_stream(runtime, data, stall_timeout);
    let (Ok((stream, canceller)), Some(file)) = (prepared, spool.take_file()) else {
        tracing::warn!("cannot prepare the data connection");
        return Box::pin(std::future::ready((
            TransferEnd::SpoolFailed(SpoolFailure::Other),
            None,
        )));
    };
    let copied = on_thread(canceller, move || match tls {
        Some(config) => match rustls::ServerConnection::new(config) {
            Ok(connection) => {
                let mut tls_stream = rustls::StreamOwned::new(connection, stream);
                // A connection closed during the handshake is no upload: only
                // after it may a close without close_notify end one.
                if tls_stream.conn.complete_io(&mut tls_stream.sock).is_err() {
                    return TransferEnd::Reset;
                }
                let mut file = file;
                let end = match copy_into(&mut tls_stream, &mut file, 0, max_size, u64::MAX) {
                    Copied::Ended(end) => end,
                    // Unreachable: no upload reaches u64::MAX bytes.
                    Copied::Paused { received } => TransferEnd::Complete { bytes: received },
                };
                // Answer the client's close_notify: some clients (python's
                // ftplib) wait for it before they read the 226.
                tls_stream.conn.send_close_notify();
                let _ = tls_stream.flush();
                end
            }
            Err(_) => TransferEnd::Reset,
        },
        None => receive_plain(stream, file, max_size),
    });
    Box::pin(async move {
        match copied.await {
            Some(TransferEnd::Complete { bytes }) => (TransferEnd::Complete { bytes }, Some(spool)),
            Some(end) => (end, None),
            None => (TransferEnd::SpoolFailed(SpoolFailure::Other), None),
        }
    })
}

/// Writes `bytes` (a directory listing) to `data` and closes it, on a
/// data thread like an upload.
pub(crate) fn send<R: Runtime>(
    runtime: &R,
    data: R::Data,
    bytes: bytes::Bytes,
    stall_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> BoxFuture<(TransferEnd, Option<SpoolFile>)> {
    let Ok((mut stream, canceller)) = blocking_stream(runtime, data, stall_timeout) else {
        return Box::pin(std::future::ready((TransferEnd::Reset, None)));
    };
    let sent = on_thread(canceller, move || {
        let written = match tls {
            Some(config) => rustls::ServerConnection::new(config)
                .map_err(io::Error::other)
                .and_then(|connection| {
                    let mut tls_stream = rustls::StreamOwned::new(connection, stream.try_clone()?);
                    tls_stream.write_all(&bytes)?;
                    tls_stream.conn.send_close_notify();
                    tls_stream.flush()
                }),
            None => stream.write_all(&bytes),
        };
        match written.and_then(|()| stream.shutdown(std::net::Shutdown::Write)) {
            Ok(()) => TransferEnd::Complete {
                bytes: bytes.len() as u64,
            },
            Err(_) => TransferEnd::Reset,
        }
    });
    Box::pin(async move { (sent.await.unwrap_or(TransferEnd::Reset), None) })
}

/// The data connection as a blocking std socket for a data thread, with
/// `stall_timeout` on reads and writes (SO_RCVTIMEO, SO_SNDTIMEO: both
/// directions, since a TLS handshake reads while a listing is sent and
/// writes while an upload is received), and a clone of it that cancels.
fn blocking_stream<R: Runtime>(
    runtime: &R,
    data: R::Data,
    stall_timeout: Duration,
) -> io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let stream = runtime.std_stream(data)?;
    stream.set_nonblocking(false)?;
    // Zero would mean "no timeout".
    let stall = Some(stall_timeout.max(Duration::from_millis(1)));
    stream.set_read_timeout(stall)?;
    stream.set_write_timeout(stall)?;
    let canceller = stream.try_clone()?;
    Ok((stream, canceller))
}

/// Runs `job` on a data thread; the future resolves to its result
/// (`None` if the thread could not start or died). Dropping the future
/// shuts `socket` down, which ends a job blocked on it.
fn on_thread<T: Send + 'static>(
    socket: std::net::TcpStream,
    job: impl FnOnce() -> T + Send + 'static,
) -> BoxFuture<Option<T>> {
    let (done, finished) = std::sync::mpsc::sync_channel(1);
    let waker_slot = std::sync::Arc::new(std::sync::Mutex::new(None::<std::task::Waker>));
    let wake = waker_slot.clone();
    let started = data_threads::run(move || {
        let _ = done.send(job());
        if let Some(waker) = wake.lock().unwrap_or_else(|e| e.into_inner()).take() {
            waker.wake();
        }
    });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start a data thread");
        return Box::pin(std::future::ready(None));
    }
    let cancel_on_drop = ShutdownOnDrop(socket);
    Box::pin(async move {
        let result = std::future::poll_fn(move |cx| {
            *waker_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            match finished.try_recv() {
                Ok(result) => std::task::Poll::Ready(Some(result)),
                Err(std::sync::mpsc::TryRecvError::Empty) => std::task::Poll::Pending,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => std::task::Poll::Ready(None),
            }
        })
        .await;
        drop(cancel_on_drop);
        result
    })
}

/// Shuts a socket down when dropped, which unblocks a thread reading it.
struct ShutdownOnDrop(std::net::TcpStream);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// A plaintext upload. Its first bytes are read and written (a small file
/// ends there, without the cost of a pipe); the rest is spliced where the
/// kernel can, else read and written too.
fn receive_plain(
    mut stream: std::net::TcpStream,
    mut file: std::fs::File,
    max_size: u64,
) -> TransferEnd {
    let received = match copy_into(
        &mut stream,
        &mut file,
        0,
        max_size,
        SMALL_UPLOAD_BUFFER as u64,
    ) {
        Copied::Ended(end) => return end,
        Copied::Paused { received } => received,
    };
    #[cfg(target_os = "linux")]
    let received = match super::splice::splice_into(&stream, &mut file, received, max_size) {
        super::splice::Spliced::Ended(end) => return end,
        super::splice::Spliced::Unsupported { received } => received,
    };
    match copy_into(&mut stream, &mut file, received, max_size, u64::MAX) {
        Copied::Ended(end) => end,
        // Unreachable: no upload reaches u64::MAX bytes.
        Copied::Paused { received } => TransferEnd::Complete { bytes: received },
    }
}

/// Where `copy_into` stopped.
enum Copied {
    /// The upload ended, one way or another.
    Ended(TransferEnd),
    /// `pause_at` bytes or more were copied and the upload goes on.
    Paused { received: u64 },
}

/// The blocking copy loop, over TCP or TLS, from `received` bytes already
/// in `file` on, until the upload ends or `pause_at` bytes are in. Under
/// TLS, a client that closes TCP without a close_notify has still ended its
/// upload: embedded clients do, and FTP's stream mode ends uploads by
/// closing.
fn copy_into(
    mut stream: impl Read,
    file: &mut std::fs::File,
    mut received: u64,
    max_size: u64,
    pause_at: u64,
) -> Copied {
    // Small files (most of what devices send) fit in a buffer on the
    // thread's stack; the large one is allocated only once a file outgrows
    // it, so a small upload costs no 256 KiB allocation and its page faults.
    let mut small = [0; SMALL_UPLOAD_BUFFER];
    let mut large = Vec::new();
    while received < pause_at {
        let buffer: &mut [u8] = if received < SMALL_UPLOAD_BUFFER as u64 {
            &mut small
        } else {
            if large.is_empty() {
                large = vec![0; RECEIVE_BUFFER];
            }
            &mut large
        };
        let read = match stream.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Copied::Ended(TransferEnd::Stalled);
            }
            Err(_) => return Copied::Ended(TransferEnd::Reset),
        };
        received += read as u64;
        if received > max_size {
            return Copied::Ended(TransferEnd::TooLarge);
        }
        if let Err(error) = file.write_all(&buffer[..read]) {
            return Copied::Ended(spool_failed(&error));
        }
        if received >= pause_at {
            return Copied::Paused { received };
        }
    }
    Copied::Ended(TransferEnd::Complete { bytes: received })
}

pub(super) fn spool_failed(error: &io::Error) -> TransferEnd {
    tracing::warn!(%error, "cannot write the spool file");
    let full = matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    );
    TransferEnd::SpoolFailed(if full {
        SpoolFailure::StorageFull
    } else {
        SpoolFailure::Other
    })
}
