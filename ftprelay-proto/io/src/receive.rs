//! Receiving an upload into its spool file, and sending a listing.

use std::cell::Cell;
use std::future::Future as _;
use std::io::{self, BufRead, Read, Write};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use proto::{MinimumRate, SpoolFailure, TransferEnd};

use crate::bandwidth::Throttle;
use crate::data_threads;
use crate::data_tls::{Handshake, TlsStream};
use crate::runtime::{BoxFuture, Runtime};
use crate::spool::SpoolFile;

/// How much of an upload is read from the socket at once. Large reads mean
/// few wake-ups and few writes for big files.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// The first bytes of every upload are read into a buffer this big on the
/// copying thread's stack.
const SMALL_UPLOAD_BUFFER: usize = 16 * 1024;

/// A data connection handed to a transfer: clear, or protected by TLS
/// (its handshake started when it was accepted).
pub(crate) enum DataConnection<D> {
    /// `PROT C`: the bytes as they come.
    Clear(D),
    /// `PROT P` (or implicit FTPS): TLS.
    Protected(Handshake),
}

/// How one upload is received: [`proto::ReceiveRequest`]'s limits.
pub(crate) struct Limits {
    pub(crate) max_size: u64,
    pub(crate) stall_timeout: Duration,
    pub(crate) min_rate: MinimumRate,
    /// The most bytes per second it may arrive at.
    pub(crate) throttle: Throttle,
}

/// Streams `data` into `spool` until the client closes it cleanly, more
/// than `max_size` bytes arrive, nothing arrives for `stall_timeout`, the
/// average rate falls below `min_rate`, or something fails. The spool file
/// is returned only when the upload is complete; otherwise it is dropped,
/// and so deleted.
///
/// The bytes are copied by a data thread (see `data_threads`) with plain
/// `read`/`write` calls: measured against async file writes (a thread hop
/// per write), it halves the CPU per GiB. Dropping the returned
/// future (ABOR, a lost control connection) shuts the socket down, which
/// ends the thread, and unlinks the spool file at once.
pub(crate) fn receive<R: Runtime>(
    runtime: &R,
    data: DataConnection<R::Stream>,
    mut spool: SpoolFile,
    limits: Limits,
) -> BoxFuture<(TransferEnd, Option<SpoolFile>)> {
    let Some(file) = spool.take_file() else {
        return spool_unusable();
    };
    let copied = match data {
        // Unthrottled, the first bytes are read on the runtime (see
        // `receive_head`); a maximum rate is kept by a data thread's sleeps.
        DataConnection::Clear(data) if limits.throttle.is_unlimited() => {
            receive_head(runtime.clone(), data, file, limits)
        }
        DataConnection::Clear(data) => {
            let Ok((stream, canceller)) = blocking_stream(runtime, data, limits.stall_timeout)
            else {
                return spool_unusable();
            };
            let pace = Pace::start(limits.min_rate, limits.throttle);
            on_thread(canceller, move || {
                receive_plain(stream, file, 0, limits.max_size, &pace)
            })
        }
        DataConnection::Protected(handshake) => Box::pin(async move {
            let stream = match handshake.done().await {
                Ok(stream) => stream,
                Err(end) => return Some(end),
            };
            let canceller = stream.sock.try_clone().ok()?;
            on_thread(canceller, move || receive_protected(stream, file, limits)).await
        }),
    };
    Box::pin(async move {
        match copied.await {
            Some(TransferEnd::Complete { bytes }) => (TransferEnd::Complete { bytes }, Some(spool)),
            Some(end) => (end, None),
            None => (TransferEnd::SpoolFailed(SpoolFailure::Other), None),
        }
    })
}

fn spool_unusable() -> BoxFuture<(TransferEnd, Option<SpoolFile>)> {
    tracing::warn!("cannot prepare the data connection");
    Box::pin(std::future::ready((
        TransferEnd::SpoolFailed(SpoolFailure::Other),
        None,
    )))
}

/// An upload under TLS, its handshake done. A client that closes TCP
/// without close_notify has still ended its upload (see `copy_into`).
///
/// The plaintext is written from rustls' own buffer (no copy into ours),
/// and the socket is read ahead in large reads: rustls asks for 4 KiB at
/// a time, a syscall each otherwise.
fn receive_protected(stream: TlsStream, mut file: std::fs::File, limits: Limits) -> TransferEnd {
    let pace = Pace::start(limits.min_rate, limits.throttle);
    let rustls::StreamOwned { conn, sock } = stream;
    let mut stream = rustls::StreamOwned::new(conn, ReadAhead::new(sock));
    let end = match copy_into(&mut stream, &mut file, 0, limits.max_size, u64::MAX, &pace) {
        Copied::Ended(end) => end,
        // Unreachable: no upload reaches u64::MAX bytes.
        Copied::Paused { received } => TransferEnd::Complete { bytes: received },
    };
    // Answer the client's close_notify: some clients (python's ftplib) wait
    // for it before they read the 226.
    stream.conn.send_close_notify();
    let _ = stream.flush();
    end
}

/// A TLS data connection's socket, read in large reads into a buffer that
/// rustls' small reads are served from; writes go straight through.
struct ReadAhead(std::io::BufReader<std::net::TcpStream>);

impl ReadAhead {
    /// How much is read from the socket at once.
    const CAPACITY: usize = 64 * 1024;

    fn new(sock: std::net::TcpStream) -> Self {
        Self(std::io::BufReader::with_capacity(Self::CAPACITY, sock))
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadAhead {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.get_mut().flush()
    }
}

/// Writes `bytes` (a directory listing, maybe empty) to `data` and closes
/// it, on a data thread like an upload. A protected connection is
/// handshaken first whatever the listing holds: an empty listing must still
/// be a TLS session with its close_notify.
pub(crate) fn send<R: Runtime>(
    runtime: &R,
    data: DataConnection<R::Stream>,
    bytes: bytes::Bytes,
    stall_timeout: Duration,
) -> BoxFuture<(TransferEnd, Option<SpoolFile>)> {
    let len = bytes.len() as u64;
    let sent = match data {
        DataConnection::Clear(data) => {
            let Ok((mut stream, canceller)) = blocking_stream(runtime, data, stall_timeout) else {
                return Box::pin(std::future::ready((TransferEnd::Reset, None)));
            };
            on_thread(canceller, move || {
                stream
                    .write_all(&bytes)
                    .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
                    .map_or(TransferEnd::Reset, |()| TransferEnd::Complete {
                        bytes: len,
                    })
            })
        }
        DataConnection::Protected(handshake) => Box::pin(async move {
            let mut stream = match handshake.done().await {
                Ok(stream) => stream,
                Err(end) => return Some(end),
            };
            let canceller = stream.sock.try_clone().ok()?;
            on_thread(canceller, move || {
                let written = stream.write_all(&bytes).and_then(|()| {
                    stream.conn.send_close_notify();
                    stream.flush()?;
                    stream.sock.shutdown(std::net::Shutdown::Write)
                });
                written.map_or(TransferEnd::Reset, |()| TransferEnd::Complete {
                    bytes: len,
                })
            })
            .await
        }),
    };
    Box::pin(async move { (sent.await.unwrap_or(TransferEnd::Reset), None) })
}

/// The data connection as a blocking std socket for a data thread, with
/// `stall_timeout` on reads and writes (SO_RCVTIMEO, SO_SNDTIMEO: both
/// directions, since a TLS handshake reads while a listing is sent and
/// writes while an upload is received), and a clone of it that cancels.
pub(super) fn blocking_stream<R: Runtime>(
    runtime: &R,
    data: R::Stream,
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
/// before that shuts `socket` down, which ends a job blocked on it; once
/// the job is done, the socket is left as the job left it (a handshake's
/// connection goes on to its transfer).
pub(super) fn on_thread<T: Send + 'static>(
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
    let cancel_on_drop = ShutdownOnDrop(Some(socket));
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
        cancel_on_drop.disarm();
        result
    })
}

/// Shuts a socket down when dropped, which unblocks a thread reading it,
/// unless disarmed.
struct ShutdownOnDrop(Option<std::net::TcpStream>);

impl ShutdownOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        if let Some(socket) = &self.0 {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A plaintext upload whose first bytes are read on the runtime, as the
/// control connection's are: an upload that ends within them (most of what
/// devices send) is written to its spool file there and done, without
/// waking a data thread and being woken by it (two thread switches of
/// four, measured as most of one small upload's latency). One that goes on
/// is handed to a data thread with what was read.
fn receive_head<R: Runtime>(
    runtime: R,
    data: R::Stream,
    mut file: std::fs::File,
    limits: Limits,
) -> BoxFuture<Option<TransferEnd>> {
    Box::pin(async move {
        let mut pace = Pace::start(limits.min_rate, limits.throttle);
        let mut head = vec![0; SMALL_UPLOAD_BUFFER];
        let stall = limits.stall_timeout;
        let (read, ended) = match read_head(&runtime, &data, &mut head, stall, &mut pace).await {
            Ok(read) => read,
            Err(end) => return Some(end),
        };
        let received = read as u64;
        if received > limits.max_size {
            return Some(TransferEnd::TooLarge);
        }
        // At most 16 KiB into the page cache: no longer than a socket
        // write, so done here rather than on a thread.
        if let Err(error) = file.write_all(&head[..read]) {
            return Some(spool_failed(&error));
        }
        if ended {
            return Some(TransferEnd::Complete { bytes: received });
        }
        let Ok((stream, canceller)) = blocking_stream(&runtime, data, limits.stall_timeout) else {
            return Some(TransferEnd::Reset);
        };
        let max_size = limits.max_size;
        on_thread(canceller, move || {
            receive_plain(stream, file, received, max_size, &pace)
        })
        .await
    })
}

/// Reads into `head` until it is full or the client closed: how much was
/// read, and whether the upload ended there. Nothing for `stall` ends it
/// [`TransferEnd::Stalled`], too slow a trickle [`TransferEnd::TooSlow`].
async fn read_head<R: Runtime>(
    runtime: &R,
    data: &R::Stream,
    head: &mut [u8],
    stall: Duration,
    // `&mut`: held across an await, and `Pace` is not `Sync`.
    pace: &mut Pace,
) -> Result<(usize, bool), TransferEnd> {
    let mut read = 0;
    let mut timer = runtime.sleep_until(runtime.now() + stall);
    // `move`: the closure owns the `&mut`s, which keeps the future `Send`.
    std::future::poll_fn(move |cx| {
        loop {
            match runtime.poll_read(data, cx, &mut head[read..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok((read, true))),
                Poll::Ready(Ok(more)) => {
                    read += more;
                    if read == head.len() {
                        return Poll::Ready(Ok((read, false)));
                    }
                    if pace.is_too_slow(read as u64) {
                        return Poll::Ready(Err(TransferEnd::TooSlow));
                    }
                    runtime.reset(&mut timer, runtime.now() + stall);
                }
                Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Err(TransferEnd::Reset)),
                Poll::Pending => break,
            }
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(TransferEnd::Stalled)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A plaintext upload on a data thread, from `received` bytes already in
/// `file` on. Its first 16 KiB are read and written through a buffer on
/// the thread's stack (a small file ends there, without the cost of a pipe
/// or an allocation); the rest is spliced where the kernel can, else read
/// and written too.
fn receive_plain(
    mut stream: std::net::TcpStream,
    mut file: std::fs::File,
    received: u64,
    max_size: u64,
    pace: &Pace,
) -> TransferEnd {
    let small = SMALL_UPLOAD_BUFFER as u64;
    let received = if received < small {
        let mut head = [0; SMALL_UPLOAD_BUFFER];
        let mut first = StackBuffered::new(&mut stream, &mut head);
        match copy_into(&mut first, &mut file, received, max_size, small, pace) {
            Copied::Ended(end) => return end,
            Copied::Paused { received } => received,
        }
    } else {
        received
    };
    #[cfg(target_os = "linux")]
    let received = match crate::splice::splice_into(&stream, &mut file, received, max_size, pace) {
        crate::splice::Spliced::Ended(end) => return end,
        crate::splice::Spliced::Unsupported { received } => received,
    };
    let mut rest = std::io::BufReader::with_capacity(RECEIVE_BUFFER, &mut stream);
    match copy_into(&mut rest, &mut file, received, max_size, u64::MAX, pace) {
        Copied::Ended(end) => end,
        // Unreachable: no upload reaches u64::MAX bytes.
        Copied::Paused { received } => TransferEnd::Complete { bytes: received },
    }
}

/// A reader buffered in a borrowed buffer (on the stack): [`BufRead`] over
/// `stream` without an allocation.
struct StackBuffered<'a, R> {
    stream: R,
    buffer: &'a mut [u8],
    start: usize,
    end: usize,
}

impl<'a, R: Read> StackBuffered<'a, R> {
    fn new(stream: R, buffer: &'a mut [u8]) -> Self {
        Self {
            stream,
            buffer,
            start: 0,
            end: 0,
        }
    }
}

impl<R: Read> Read for StackBuffered<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for StackBuffered<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.end = self.stream.read(self.buffer)?;
            self.start = 0;
        }
        Ok(&self.buffer[self.start..self.end])
    }

    fn consume(&mut self, amount: usize) {
        self.start = (self.start + amount).min(self.end);
    }
}

/// When an upload started, to hold it to its minimum average rate, and
/// its maximum rate. The clock is read here, on the data thread; the rules
/// are the core's.
pub(super) struct Pace {
    started: Instant,
    min_rate: MinimumRate,
    throttle: Throttle,
    /// Time spent held back by the maximum rates: not the client's
    /// slowness, so not counted against its minimum.
    throttled: Cell<Duration>,
}

impl Pace {
    fn start(min_rate: MinimumRate, throttle: Throttle) -> Self {
        Self {
            started: Instant::now(),
            min_rate,
            throttle,
            throttled: Cell::new(Duration::ZERO),
        }
    }

    /// Whether `received` bytes by now are too few.
    pub(super) fn is_too_slow(&self, received: u64) -> bool {
        let elapsed = self.started.elapsed().saturating_sub(self.throttled.get());
        self.min_rate.is_too_slow(received, elapsed)
    }

    /// How many of `want` bytes may be read now (at least one, unless
    /// `want` is 0), after waiting as long as the maximum rates require.
    pub(super) fn allow(&self, want: usize) -> usize {
        let (allowed, slept) = self.throttle.allow(want);
        self.throttled.set(self.throttled.get() + slept);
        allowed
    }

    /// Of the `allowed` bytes, `read` came: the rest is not charged.
    pub(super) fn used(&self, allowed: usize, read: usize) {
        self.throttle.used(allowed, read);
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
/// in `file` on, until the upload ends or `pause_at` bytes are in. Each
/// chunk `stream` has buffered is written as it is; it pauses only once
/// the chunk is used up, so that nothing read is left behind in `stream`.
/// Under TLS, a client that closes TCP without a close_notify has still
/// ended its upload: embedded clients do, and FTP's stream mode ends
/// uploads by closing.
fn copy_into(
    stream: &mut impl BufRead,
    file: &mut std::fs::File,
    mut received: u64,
    max_size: u64,
    pause_at: u64,
    pace: &Pace,
) -> Copied {
    loop {
        let chunk = match stream.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
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
        // Under a maximum rate, as much of the chunk as may be taken now.
        let taken = pace.allow(chunk.len()).min(chunk.len());
        let whole = taken == chunk.len();
        received += taken as u64;
        if received > max_size {
            return Copied::Ended(TransferEnd::TooLarge);
        }
        if let Err(error) = file.write_all(&chunk[..taken]) {
            return Copied::Ended(spool_failed(&error));
        }
        stream.consume(taken);
        if pace.is_too_slow(received) {
            return Copied::Ended(TransferEnd::TooSlow);
        }
        if received >= pause_at && whole {
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
