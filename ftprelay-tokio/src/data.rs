//! Data connections: passive listeners, active connects, and streaming an
//! upload into its spool file.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use proto::{PassivePorts, SpoolFailure, TransferEnd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
pub(crate) async fn receive(
    mut connection: TcpStream,
    mut spool: SpoolFile,
    max_size: u64,
    stall_timeout: Duration,
) -> (TransferEnd, Option<SpoolFile>) {
    let Some(file) = spool.take_file() else {
        return (TransferEnd::SpoolFailed(SpoolFailure::Other), None);
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut buffer = vec![0; RECEIVE_BUFFER];
    let mut received: u64 = 0;
    loop {
        let read = match tokio::time::timeout(stall_timeout, connection.read(&mut buffer)).await {
            Err(_) => return (TransferEnd::Stalled, None),
            Ok(Err(_)) => return (TransferEnd::Reset, None),
            Ok(Ok(0)) => break,
            Ok(Ok(read)) => read,
        };
        received += read as u64;
        if received > max_size {
            return (TransferEnd::TooLarge, None);
        }
        if let Err(error) = file.write_all(&buffer[..read]).await {
            return (spool_failed(&error), None);
        }
    }
    // tokio writes in the background: the file is complete only once flushed.
    if let Err(error) = file.flush().await {
        return (spool_failed(&error), None);
    }
    (TransferEnd::Complete { bytes: received }, Some(spool))
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
