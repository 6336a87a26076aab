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
///
/// `inherited` listeners (passed by a service manager: systemd's socket
/// activation), when there are any, are the plain listeners instead of
/// [`RelayConfig::listen`].
pub(crate) fn bind_all(
    config: &RelayConfig,
    tls: bool,
    inherited: Vec<std::net::TcpListener>,
) -> io::Result<Vec<(std::net::TcpListener, bool)>> {
    if !tls && !config.implicit_tls_listen.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "implicit TLS listeners need a certificate and key",
        ));
    }
    let mut all = Vec::new();
    let plain: &[SocketAddr] = if inherited.is_empty() {
        &config.listen
    } else {
        for listener in inherited {
            listener.set_nonblocking(true)?;
            all.push((listener, false));
        }
        &[]
    };
    let plain = plain.iter().map(|addr| (addr, false));
    let implicit = config.implicit_tls_listen.iter().map(|addr| (addr, true));
    for (addr, implicit) in plain.chain(implicit) {
        let listener = bind(*addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        all.push((listener, implicit));
    }
    Ok(all)
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
