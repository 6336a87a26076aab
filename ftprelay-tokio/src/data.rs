//! Data connections: passive listeners, active connects, and streaming an
//! upload into its spool file.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use proto::{PassivePorts, SpoolFailure, TransferEnd};
use tokio::net::{TcpListener, TcpStream};

use crate::spool::SpoolFile;

/// How much of an upload is read from the socket at once. Large reads mean
/// few wake-ups and few writes for big files.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// Opens a passive listener on `ip`: on a port of `ports` (each tried once,
/// from a place that moves with `turn`), or on any port when there is no
/// range. `None` when every port of the range is taken.
pub(crate) async fn listen(
    ip: IpAddr,
    ports: Option<PassivePorts>,
    turn: u64,
) -> io::Result<Option<TcpListener>> {
    let Some(ports) = ports else {
        return TcpListener::bind(SocketAddr::new(ip, 0)).await.map(Some);
    };
    for port in ports.candidates(turn) {
        match TcpListener::bind(SocketAddr::new(ip, port)).await {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Connects to a client's active-mode address.
pub(crate) async fn connect(target: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect(target).await
}

/// Streams `connection` into `spool` until the client closes it cleanly,
/// more than `max_size` bytes arrive, nothing arrives for `stall_timeout`,
/// or something fails. The spool file is returned only when the upload is
/// complete; otherwise it is dropped, and so deleted, here.
///
/// The bytes are copied by a thread of its own with plain `read`/`write`
/// calls: measured against async file writes (a thread hop per write), it
/// halves the CPU per GiB. Not tokio's blocking pool: it is shared with
/// logins and processors, and long uploads must not starve them; one thread
/// per upload is bounded by the connection limit. Dropping the returned
/// future (ABOR, a lost control connection) shuts the socket down, which
/// ends the thread, and unlinks the spool file at once.
pub(crate) async fn receive(
    connection: TcpStream,
    mut spool: SpoolFile,
    max_size: u64,
    stall_timeout: Duration,
) -> (TransferEnd, Option<SpoolFile>) {
    let prepared = connection.into_std().and_then(|stream| {
        stream.set_nonblocking(false)?;
        // SO_RCVTIMEO: zero would mean "no timeout".
        stream.set_read_timeout(Some(stall_timeout.max(Duration::from_millis(1))))?;
        let canceller = stream.try_clone()?;
        Ok((stream, canceller))
    });
    let (Ok((stream, canceller)), Some(file)) = (prepared, spool.take_file()) else {
        return (TransferEnd::SpoolFailed(SpoolFailure::Other), None);
    };
    let _cancel_on_drop = ShutdownOnDrop(canceller);
    let (done, copied) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("ftprelay-receive".to_owned())
        .spawn(move || {
            let _ = done.send(copy_into(stream, file, max_size));
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start a receiving thread");
        return (TransferEnd::SpoolFailed(SpoolFailure::Other), None);
    }
    match copied.await {
        Ok(TransferEnd::Complete { bytes }) => (TransferEnd::Complete { bytes }, Some(spool)),
        Ok(end) => (end, None),
        Err(_) => (TransferEnd::SpoolFailed(SpoolFailure::Other), None),
    }
}

/// Shuts a socket down when dropped, which unblocks a thread reading it.
struct ShutdownOnDrop(std::net::TcpStream);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// The blocking copy loop.
fn copy_into(
    mut stream: std::net::TcpStream,
    mut file: std::fs::File,
    max_size: u64,
) -> TransferEnd {
    use std::io::{Read, Write};
    let mut buffer = vec![0; RECEIVE_BUFFER];
    let mut received: u64 = 0;
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return TransferEnd::Stalled;
            }
            Err(_) => return TransferEnd::Reset,
        };
        received += read as u64;
        if received > max_size {
            return TransferEnd::TooLarge;
        }
        if let Err(error) = file.write_all(&buffer[..read]) {
            return spool_failed(&error);
        }
    }
    TransferEnd::Complete { bytes: received }
}

fn spool_failed(error: &io::Error) -> TransferEnd {
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
