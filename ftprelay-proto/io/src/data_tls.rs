//! The TLS handshake of a protected data connection. It starts on a data
//! thread the moment the connection is accepted (or connected), not when
//! STOR or LIST arrives: some clients (python's aioftp) finish the
//! handshake before they send the command, and would wait for each other
//! with a relay that waited for the command. The handshake as a whole is
//! bounded by the stall timeout, so a client that trickles it in cannot
//! hold a thread.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::TransferEnd;
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};

use crate::receive::{blocking_stream, on_thread};
use crate::runtime::{BoxFuture, Runtime};

/// A data connection once its handshake is done.
pub(crate) type TlsStream = StreamOwned<ServerConnection, TcpStream>;

/// A handshake running on a data thread; dropping it shuts the connection
/// down, which ends the handshake.
pub(crate) struct Handshake(BoxFuture<Result<TlsStream, TransferEnd>>);

impl Handshake {
    /// The handshaken connection, or how the transfer ends instead.
    pub(crate) async fn done(self) -> Result<TlsStream, TransferEnd> {
        self.0.await
    }
}

/// Starts the handshake of `data` under `config`. With
/// `require_resumption`, a handshake that does not resume a session of
/// `config`'s store fails with [`TransferEnd::TlsSessionNotResumed`].
pub(crate) fn start<R: Runtime>(
    runtime: &R,
    data: R::Stream,
    stall_timeout: Duration,
    config: Arc<ServerConfig>,
    require_resumption: bool,
) -> Handshake {
    let Ok((stream, canceller)) = blocking_stream(runtime, data, stall_timeout) else {
        return Handshake(Box::pin(std::future::ready(Err(TransferEnd::Reset))));
    };
    let done = on_thread(canceller, move || {
        let stall = stall_timeout.max(Duration::from_millis(1));
        let stream = handshake(stream, stall, config)?;
        if require_resumption && stream.conn.handshake_kind() != Some(HandshakeKind::Resumed) {
            tracing::info!("data connection refused: it did not resume the TLS session");
            let mut stream = stream;
            stream.conn.send_close_notify();
            let _ = stream.flush();
            return Err(TransferEnd::TlsSessionNotResumed);
        }
        Ok(stream)
    });
    Handshake(Box::pin(async move {
        done.await.unwrap_or(Err(TransferEnd::TlsHandshakeFailed))
    }))
}

/// The server's side of the handshake over the blocking `stream`, done
/// within `stall` in all; the stream's timeouts are `stall` again after.
fn handshake(
    stream: TcpStream,
    stall: Duration,
    config: Arc<ServerConfig>,
) -> Result<TlsStream, TransferEnd> {
    let connection = ServerConnection::new(config).map_err(|_| TransferEnd::TlsHandshakeFailed)?;
    let mut tls = StreamOwned::new(connection, stream);
    let deadline = Instant::now() + stall;
    let failed = |error: &io::Error| match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransferEnd::Stalled,
        _ => {
            tracing::debug!(%error, "TLS handshake on a data connection failed");
            TransferEnd::TlsHandshakeFailed
        }
    };
    while tls.conn.is_handshaking() {
        // What is left of the deadline bounds each read and write.
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(TransferEnd::Stalled)?;
        set_timeouts(&tls.sock, left).map_err(|e| failed(&e))?;
        while tls.conn.wants_write() {
            tls.conn.write_tls(&mut tls.sock).map_err(|e| failed(&e))?;
        }
        if !tls.conn.is_handshaking() {
            break;
        }
        match tls.conn.read_tls(&mut tls.sock) {
            // Closed before the handshake ended: no upload.
            Ok(0) => return Err(TransferEnd::TlsHandshakeFailed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(&e)),
        }
        if let Err(error) = tls.conn.process_new_packets() {
            tracing::debug!(%error, "TLS handshake on a data connection failed");
            // The alert that says why.
            let _ = tls.conn.write_tls(&mut tls.sock);
            return Err(TransferEnd::TlsHandshakeFailed);
        }
    }
    // The server's last flight (TLS 1.2's Finished).
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut tls.sock).map_err(|e| failed(&e))?;
    }
    set_timeouts(&tls.sock, stall).map_err(|e| failed(&e))?;
    Ok(tls)
}

fn set_timeouts(socket: &TcpStream, timeout: Duration) -> io::Result<()> {
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))
}

/// A "handshake" that has failed already, with `end`.
pub(crate) fn failed(end: TransferEnd) -> Handshake {
    Handshake(Box::pin(std::future::ready(Err(end))))
}
