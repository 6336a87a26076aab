//! The relay's control listeners: bound before anything else happens.

use std::io;
use std::net::SocketAddr;

use proto::RelayConfig;
use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel queues for each listener until the relay accepts
/// them. Devices connect in bursts (every camera at the top of the minute);
/// with std's 128, a burst of 512 overflowed the queue, and since the
/// server speaks first, a client whose handshake the kernel dropped waited
/// for a greeting forever. The kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 1024;

/// Every listener of `config`, in order (the plain ones, then the implicit
/// TLS ones, each with `true`), non-blocking, ready for a runtime. Fails
/// with the address that could not be bound; nothing else is touched, so a
/// relay that cannot listen leaves its spool alone.
pub(crate) fn bind_all(
    config: &RelayConfig,
    tls: bool,
) -> io::Result<Vec<(std::net::TcpListener, bool)>> {
    if !tls && !config.implicit_tls_listen.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "implicit TLS listeners need a certificate and key",
        ));
    }
    let plain = config.listen.iter().map(|addr| (addr, false));
    let implicit = config.implicit_tls_listen.iter().map(|addr| (addr, true));
    plain
        .chain(implicit)
        .map(|(addr, implicit)| {
            bind(*addr)
                .map(|listener| (listener, implicit))
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        })
        .collect()
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restarted relay must not wait for its old connections' TIME_WAIT.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `[::]` means IPv6 only: `0.0.0.0` is listened on separately.
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
