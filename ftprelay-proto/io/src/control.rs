//! The control connection of one session: its socket, its TLS once
//! started, the reply bytes not yet written, and how far closing has come.

use std::future::Future as _;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::Runtime;

/// Control bytes read at once. The buffer lives on the stack of one poll,
/// not in the session: an idle session holds no read buffer at all.
pub(crate) const READ_CHUNK: usize = 4096;

/// How long the last replies may take to reach a client before the control
/// connection is dropped anyway.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(10);

/// One control connection.
pub(crate) struct ControlStream<R: Runtime> {
    stream: R::Stream,
    /// TLS on the connection, once started.
    tls: Option<rustls::ServerConnection>,
    /// Encoded replies (TLS records, once TLS is on) not yet written.
    unwritten: Vec<u8>,
    /// Whether the connection is still read.
    reading: bool,
    /// When the session asked to close the connection.
    closing_since: Option<Instant>,
    /// The write half is shut (or gone).
    writer_shut: bool,
    /// The bound on the last replies' flush, once closing.
    linger: Option<R::Sleep>,
}

/// What records that arrived under TLS held.
pub(crate) struct Decrypted {
    /// The commands' bytes.
    pub(crate) plaintext: Vec<u8>,
    /// The connection ended with them: `Some(true)` cleanly (the peer's
    /// close_notify), `Some(false)` with a TLS error.
    pub(crate) ended: Option<bool>,
}

impl<R: Runtime> ControlStream<R> {
    /// The connection, tuned for FTP; with TLS from the first byte for an
    /// implicit-TLS listener.
    pub(crate) fn new(stream: R::Stream, tls: Option<rustls::ServerConnection>) -> Self {
        tune(&stream);
        Self {
            stream,
            tls,
            unwritten: Vec::new(),
            reading: true,
            closing_since: None,
            writer_shut: false,
            linger: None,
        }
    }

    /// Whether TLS is on.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// How many bytes wait to be written.
    pub(crate) fn unwritten(&self) -> usize {
        self.unwritten.len()
    }

    /// Whether to read: still reading, and fewer than `most` bytes unwritten
    /// (a client that does not read its replies does not grow our memory).
    pub(crate) fn wants_read(&self, most: usize) -> bool {
        self.reading && self.unwritten.len() < most
    }

    /// Stops reading (end of file, an error, or closing).
    pub(crate) fn stop_reading(&mut self) {
        self.reading = false;
    }

    /// Queues reply bytes: through TLS once it is on.
    pub(crate) fn write(&mut self, plaintext: &[u8]) {
        match &mut self.tls {
            Some(tls) => {
                if tls.writer().write_all(plaintext).is_ok() {
                    self.flush_tls();
                }
            }
            None => self.unwritten.extend_from_slice(plaintext),
        }
    }

    /// From here on everything goes through `tls` (the `234` that started
    /// it was written in plaintext already).
    pub(crate) fn start_tls(&mut self, tls: rustls::ServerConnection) {
        self.tls = Some(tls);
    }

    /// Decrypts the records that arrived, and queues what TLS wants to send
    /// (handshake, alerts).
    pub(crate) fn decrypt(&mut self, mut records: &[u8]) -> Decrypted {
        let mut decrypted = Decrypted {
            plaintext: Vec::new(),
            ended: None,
        };
        let Some(tls) = &mut self.tls else {
            return decrypted;
        };
        while !records.is_empty() && decrypted.ended.is_none() {
            match tls.read_tls(&mut records) {
                // rustls takes nothing more after the peer's close_notify.
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => {
                    decrypted.ended = Some(false);
                    break;
                }
            }
            match tls.process_new_packets() {
                Ok(state) => {
                    let plaintext = &mut decrypted.plaintext;
                    let (start, available) = (plaintext.len(), state.plaintext_bytes_to_read());
                    plaintext.resize(start + available, 0);
                    if tls.reader().read_exact(&mut plaintext[start..]).is_err() {
                        plaintext.truncate(start);
                    }
                    if state.peer_has_closed() {
                        decrypted.ended = Some(true);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "TLS failed on the control connection");
                    decrypted.ended = Some(false);
                }
            }
        }
        // The handshake's answers, or the alert that says why it failed.
        self.flush_tls();
        decrypted
    }

    /// Moves what TLS has to send into the bytes to write.
    fn flush_tls(&mut self) {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                if tls.write_tls(&mut self.unwritten).is_err() {
                    break;
                }
            }
        }
    }

    /// The session closes the connection at `now`: TLS says goodbye, the
    /// replies so far are flushed (for at most [`CLOSE_LINGER`]), nothing
    /// more is read.
    pub(crate) fn close(&mut self, now: Instant) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            self.flush_tls();
        }
        self.reading = false;
        self.closing_since = Some(now);
    }

    /// Once closing and flushed, the write half is shut.
    pub(crate) fn shut_when_flushed(&mut self) {
        if self.closing_since.is_some() && self.unwritten.is_empty() && !self.writer_shut {
            let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Write);
            self.writer_shut = true;
        }
    }

    /// Reads into `buf`, when reading is on.
    pub(crate) fn poll_read(
        &self,
        runtime: &R,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        runtime.poll_read(&self.stream, cx, buf)
    }

    /// Writes what waits, if anything does.
    pub(crate) fn poll_write(&self, runtime: &R, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.unwritten.is_empty() || self.writer_shut {
            return Poll::Pending;
        }
        runtime.poll_write(&self.stream, cx, &self.unwritten)
    }

    /// `written` bytes went out.
    pub(crate) fn wrote(&mut self, written: usize) {
        self.unwritten.drain(..written.min(self.unwritten.len()));
        // A burst of replies (a pipelined batch, a long FEAT) does not stay
        // allocated in a session that then sits idle.
        if self.unwritten.is_empty() && self.unwritten.capacity() > READ_CHUNK {
            self.unwritten = Vec::new();
        }
    }

    /// Writing failed: the client is gone, nothing more can reach it.
    pub(crate) fn write_failed(&mut self) {
        self.unwritten.clear();
        self.writer_shut = true;
        self.reading = false;
    }

    /// Resolves when a closing connection's flush has taken too long.
    pub(crate) fn poll_linger(&mut self, runtime: &R, cx: &mut Context<'_>) -> Poll<()> {
        let (Some(since), false) = (self.closing_since, self.writer_shut) else {
            return Poll::Pending;
        };
        let linger = self
            .linger
            .get_or_insert_with(|| runtime.sleep_until(since + CLOSE_LINGER));
        std::pin::Pin::new(linger).poll(cx).map(drop)
    }

    /// The client does not read its last replies: they are dropped, and
    /// the connection with them.
    pub(crate) fn abandon(&mut self) {
        self.unwritten.clear();
        self.writer_shut = true;
        let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
    }

    /// Best effort, as the session ends: the last replies (a `421`, a
    /// `221`), for at most [`CLOSE_LINGER`].
    pub(crate) async fn flush_last(&mut self, runtime: &R) {
        if self.unwritten.is_empty() || self.writer_shut {
            return;
        }
        let written =
            crate::wait::write_within(runtime, &self.stream, &self.unwritten, CLOSE_LINGER).await;
        self.unwritten.drain(..written);
    }
}

/// The socket options every control connection gets.
fn tune(control: &impl AsFd) {
    let socket = socket2::SockRef::from(control);
    // A 226 must not wait behind Nagle's algorithm.
    if let Err(error) = socket.set_tcp_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    // ABOR comes after a Telnet Synch whose DM byte is sent as TCP urgent
    // data: keep it in the stream, where the framer strips it.
    if let Err(error) = socket.set_out_of_band_inline(true) {
        tracing::debug!(%error, "cannot set SO_OOBINLINE");
    }
}
