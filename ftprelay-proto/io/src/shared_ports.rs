//! A passive port range shared by every session of a relay. Each port of
//! the range has one listener, and any number of sessions wait on it at
//! once: one per client address. An incoming data connection goes to the
//! session waiting on that port for a connection from that address; no
//! other session can get it. So eight ports serve hundreds of sessions (a
//! Kubernetes Service declares eight ports, not a range), and a client is
//! refused (`425`) only when its address waits on every port already.
//!
//! A port is bound the first time a session needs it and stays bound until
//! the relay stops: closing it when nobody waits would race the next
//! session's bind (the closed listener lingers until its task is dropped),
//! and the range is the relay's anyway. A task of its own accepts on it; a
//! connection nobody waits for is closed.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use proto::{Authenticator, PassivePorts};

use crate::passive::Acceptor;
use crate::runtime::{BoxFuture, Runtime};
use crate::state::Shared;

/// The ports of the range that have listeners, and who waits on each.
pub(crate) struct SharedPorts<S> {
    ports: Mutex<HashMap<SocketAddr, Port<S>>>,
    /// The data-peer check is off (`data_peer_must_match`): a data
    /// connection may come from another address than its session's (a NAT
    /// with several addresses, a load balancer that rewrites them), so it
    /// cannot be matched by address. Each port then has one waiting
    /// session at most, which gets whatever connects.
    any_address: bool,
}

/// One port's listener: the sessions waiting on it, by client address.
struct Port<S> {
    waiting: HashMap<IpAddr, Arc<Slot<S>>>,
    /// The task accepting on the listener: dropping it closes the listener.
    accepting: BoxFuture<Option<()>>,
}

/// Where a waiting session's connection is put.
struct Slot<S> {
    state: Mutex<SlotState<S>>,
}

struct SlotState<S> {
    /// A connection that came, and its client, until the session takes it.
    arrived: Option<(S, SocketAddr)>,
    /// The waiting session's task, woken when a connection is put here.
    waker: Option<Waker>,
}

impl<S> Default for SharedPorts<S> {
    fn default() -> Self {
        Self::new(false)
    }
}

impl<S> SharedPorts<S> {
    /// No port bound yet; with `any_address`, one session a port, which
    /// gets a connection from any address.
    pub(crate) fn new(any_address: bool) -> Self {
        Self {
            ports: Mutex::new(HashMap::new()),
            any_address,
        }
    }
}

impl<S: Send + 'static> SharedPorts<S> {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Port<S>>> {
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes every port's listener (the relay stopped).
    pub(crate) fn close_all(&self) {
        let ports = std::mem::take(&mut *self.lock());
        // Outside the lock: cancelling a task may drop its future here.
        let accepting: Vec<_> = ports.into_values().map(|port| port.accepting).collect();
        drop(accepting);
    }

    /// Gives `stream`, accepted on `port` from `peer`, to the session
    /// waiting there for `peer`'s address. Without one (it stopped waiting,
    /// or never did), or when that session has a connection it has not
    /// taken yet, the connection is closed.
    fn deliver(&self, port: SocketAddr, stream: S, peer: SocketAddr) {
        let slot = self.lock().get(&port).and_then(|listener| {
            let waiting = &listener.waiting;
            match waiting.get(&peer.ip().to_canonical()) {
                Some(slot) => Some(slot.clone()),
                // The port's one session, whoever connects.
                None if self.any_address => waiting.values().next().cloned(),
                None => None,
            }
        });
        let Some(slot) = slot else {
            tracing::debug!(%peer, port = port.port(), "no session waits for this data connection: closed");
            return;
        };
        let mut state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.arrived.is_some() {
            tracing::debug!(%peer, port = port.port(), "a second data connection: closed");
            return;
        }
        state.arrived = Some((stream, peer));
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// A session waiting on a shared port for a connection from its client.
/// Dropping it stops the wait (and closes the port's listener if no other
/// session waits on it).
pub(crate) struct Waiting<S: Send + 'static> {
    ports: Arc<SharedPorts<S>>,
    port: SocketAddr,
    client: IpAddr,
    slot: Arc<Slot<S>>,
}

impl<S: Send + 'static> Waiting<S> {
    /// The port waited on (the listener's address).
    pub(crate) fn port(&self) -> SocketAddr {
        self.port
    }

    /// The connection from the client, once it came.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<(S, SocketAddr)> {
        let mut state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match state.arrived.take() {
            Some(arrived) => Poll::Ready(arrived),
            None => {
                match &mut state.waker {
                    Some(waker) => waker.clone_from(cx.waker()),
                    None => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<S: Send + 'static> Drop for Waiting<S> {
    fn drop(&mut self) {
        let mut ports = self.ports.lock();
        if let Some(port) = ports.get_mut(&self.port)
            && port
                .waiting
                .get(&self.client)
                .is_some_and(|slot| Arc::ptr_eq(slot, &self.slot))
        {
            port.waiting.remove(&self.client);
        }
    }
}

/// Waits on a port of `range` on `ip` for a connection from `client`: a
/// port this address does not wait on yet, tried from a place that moves
/// with `turn`. A port with no listener yet is bound (binding is the only
/// race-free test of whether another program has it). `None` when this
/// address waits on every port of the range, or every port it does not is
/// taken by another program.
pub(crate) fn wait<A: Authenticator, R: Runtime>(
    shared: &Arc<Shared<A, R>>,
    ip: IpAddr,
    client: IpAddr,
    range: PassivePorts,
    turn: u64,
) -> io::Result<Option<Waiting<R::Stream>>> {
    let candidates = range.candidates(turn).map(|port| SocketAddr::new(ip, port));
    shared
        .passive
        .claim(candidates, client, |port| listen(shared, port))
}

impl<S: Send + 'static> SharedPorts<S> {
    /// Waits on the first of `candidates` that `client` does not wait on
    /// yet and that has a listener; failing that, on the first that gets
    /// one from `listen` (`None`: the port is taken by another program).
    /// Bound ports first: ports stay bound until the relay stops, so
    /// binding a new one for each wait would end with the whole range held
    /// open (a descriptor and a task a port), however few sessions wait.
    fn claim(
        self: &Arc<Self>,
        candidates: impl Iterator<Item = SocketAddr> + Clone,
        client: IpAddr,
        mut listen: impl FnMut(SocketAddr) -> io::Result<Option<BoxFuture<Option<()>>>>,
    ) -> io::Result<Option<Waiting<S>>> {
        let client = client.to_canonical();
        let mut ports = self.lock();
        // Whether `client` may wait on a port that has a listener.
        let any_address = self.any_address;
        let free = |listener: &Port<S>| {
            if any_address {
                listener.waiting.is_empty()
            } else {
                !listener.waiting.contains_key(&client)
            }
        };
        let bound = candidates
            .clone()
            .find(|port| ports.get(port).is_some_and(free));
        for port in bound.into_iter().chain(candidates) {
            let listener = match ports.get_mut(&port) {
                Some(listener) if !free(listener) => continue,
                Some(listener) => listener,
                None => {
                    let Some(accepting) = listen(port)? else {
                        continue;
                    };
                    ports.entry(port).or_insert(Port {
                        waiting: HashMap::new(),
                        accepting,
                    })
                }
            };
            let slot = Arc::new(Slot {
                state: Mutex::new(SlotState {
                    arrived: None,
                    waker: None,
                }),
            });
            listener.waiting.insert(client, slot.clone());
            return Ok(Some(Waiting {
                ports: self.clone(),
                port,
                client,
                slot,
            }));
        }
        Ok(None)
    }
}

/// Binds `port` and starts its accepting task; `None` when another program
/// has the port.
fn listen<A: Authenticator, R: Runtime>(
    shared: &Arc<Shared<A, R>>,
    port: SocketAddr,
) -> io::Result<Option<BoxFuture<Option<()>>>> {
    let listener = match std::net::TcpListener::bind(port) {
        Ok(listener) => listener,
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => return Ok(None),
        Err(error) => return Err(error),
    };
    listener.set_nonblocking(true)?;
    let listener = shared.runtime.listener(listener)?;
    let mut acceptor = Acceptor::new(listener, port);
    // Weak: the relay's state holds this task, which must not keep it.
    let relay = Arc::downgrade(shared);
    let accepting = shared.runtime.spawn(async move {
        while let Some((stream, peer)) =
            std::future::poll_fn(|cx| next(&relay, &mut acceptor, cx)).await
        {
            if let Some(shared) = relay.upgrade() {
                shared.passive.deliver(port, stream, peer);
            }
        }
    });
    Ok(Some(accepting))
}

/// The next connection on a shared port; `None` once the relay is gone.
fn next<A: Authenticator, R: Runtime>(
    relay: &Weak<Shared<A, R>>,
    acceptor: &mut Acceptor<R>,
    cx: &mut Context<'_>,
) -> Poll<Option<(R::Stream, SocketAddr)>> {
    let Some(shared) = relay.upgrade() else {
        return Poll::Ready(None);
    };
    let trusted = |ip| crate::proxy::is_trusted(&shared.config, ip);
    acceptor.poll_next(&shared.runtime, cx, trusted).map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use proptest::prelude::*;

    use super::{SharedPorts, Waiting};

    const PORTS: u16 = 4;
    const CLIENTS: u8 = 3;

    #[derive(Debug, Clone)]
    enum Step {
        /// A session from this client asks for a port.
        Claim { client: u8, turn: u64 },
        /// The session of this index (among those waiting) stops waiting.
        Release(usize),
        /// A connection comes on this port from this client.
        Connect { port: u16, client: u8 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..CLIENTS, any::<u64>()).prop_map(|(client, turn)| Step::Claim { client, turn }),
            any::<usize>().prop_map(Step::Release),
            (0..PORTS, 0..CLIENTS).prop_map(|(port, client)| Step::Connect { port, client }),
        ]
    }

    fn client(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + n))
    }

    fn port(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 30_000 + n))
    }

    proptest! {
        /// Against a model of who waits where: a session is refused a port
        /// only when its client waits on every free port already; no two
        /// sessions of a client wait on one port; a connection reaches the
        /// session waiting on its port for its client, and no other.
        #[test]
        fn connections_reach_only_the_session_waiting_for_their_client(
            steps in prop::collection::vec(step(), 1..60),
            taken_by_others in prop::collection::hash_set(0..PORTS, 0..2),
        ) {
            let table = Arc::new(SharedPorts::<u32>::default());
            // Each waiting session, with the connections it should have.
            let mut waiting: Vec<(Waiting<u32>, u8, Vec<u32>)> = Vec::new();
            let mut next_connection = 0;
            for step in steps {
                match step {
                    Step::Claim { client: c, turn } => {
                        let candidates =
                            (0..PORTS).map(|i| port((i + (turn % u64::from(PORTS)) as u16) % PORTS));
                        let claimed = table
                            .claim(candidates, client(c), |p| {
                                let free = !taken_by_others.contains(&(p.port() - 30_000));
                                Ok(free.then(|| -> super::BoxFuture<Option<()>> {
                                    Box::pin(std::future::pending())
                                }))
                            })
                            .expect("claim");
                        let free = (0..PORTS).filter(|p| !taken_by_others.contains(p)).count();
                        let mine = waiting.iter().filter(|(_, owner, _)| *owner == c).count();
                        match claimed {
                            Some(claimed) => {
                                let n = claimed.port().port() - 30_000;
                                prop_assert!(!taken_by_others.contains(&n));
                                prop_assert!(
                                    !waiting.iter().any(|(w, owner, _)| *owner == c && w.port() == claimed.port()),
                                    "client {} waits on {} twice", c, n
                                );
                                waiting.push((claimed, c, Vec::new()));
                            }
                            None => prop_assert_eq!(mine, free, "refused with a port left"),
                        }
                    }
                    Step::Release(index) if !waiting.is_empty() => {
                        let index = index % waiting.len();
                        let (released, _, expected) = waiting.swap_remove(index);
                        let got = drain(&released);
                        prop_assert_eq!(got, expected);
                    }
                    Step::Release(_) => {}
                    Step::Connect { port: p, client: c } => {
                        next_connection += 1;
                        let from = SocketAddr::new(client(c), 40_000);
                        table.deliver(port(p), next_connection, from);
                        if let Some((_, _, expected)) = waiting
                            .iter_mut()
                            .find(|(w, owner, _)| *owner == c && w.port() == port(p))
                        {
                            // One connection at a time: a second one before
                            // the session took the first is closed.
                            if expected.is_empty() {
                                expected.push(next_connection);
                            }
                        }
                        // Each waiting session takes what came for it.
                        for (session, _, expected) in &mut waiting {
                            let got = drain(session);
                            prop_assert_eq!(&got, &*expected);
                            expected.clear();
                        }
                    }
                }
            }
        }
    }

    /// The connection that came for `waiting`, if any.
    fn drain(waiting: &Waiting<u32>) -> Vec<u32> {
        let mut cx = Context::from_waker(Waker::noop());
        match waiting.poll(&mut cx) {
            Poll::Ready((stream, _)) => vec![stream],
            Poll::Pending => Vec::new(),
        }
    }

    /// A relay with a wide range (`--passive-ports 30000-39999`) whose
    /// sessions wait one at a time binds one port, not one more per PASV
    /// until the whole range is held open: ports are kept until the relay
    /// stops, and each is a descriptor and a task.
    #[test]
    fn a_port_with_a_listener_is_used_before_another_is_bound() {
        let table = Arc::new(SharedPorts::<u32>::default());
        let mut bound = HashSet::new();
        for turn in 0..100 {
            let candidates = (0..100).map(|i| port((i + turn) % 100));
            let waiting = table
                .claim(candidates, client(0), |p| {
                    bound.insert(p);
                    Ok(Some(Box::pin(std::future::pending())))
                })
                .expect("claim")
                .expect("a port");
            drop(waiting);
        }
        assert_eq!(bound.len(), 1, "ports bound: {bound:?}");
    }

    /// A port that cannot be bound (out of descriptors, say) does not
    /// refuse a client a port that is bound already and free for it.
    #[test]
    fn a_failed_bind_does_not_hide_a_bound_port() {
        let table = Arc::new(SharedPorts::<u32>::default());
        let ok = |_| -> std::io::Result<Option<super::BoxFuture<Option<()>>>> {
            Ok(Some(Box::pin(std::future::pending())))
        };
        let first = table.claim([port(1)].into_iter(), client(0), ok);
        drop(first);
        let failing = |_| -> std::io::Result<Option<super::BoxFuture<Option<()>>>> {
            Err(std::io::Error::from_raw_os_error(24))
        };
        let claimed = table
            .claim([port(0), port(1)].into_iter(), client(0), failing)
            .expect("port 1 is bound and free for the client")
            .expect("a port");
        assert_eq!(claimed.port(), port(1));
    }

    #[test]
    fn a_client_given_every_port_is_refused_until_one_is_released() {
        let table = Arc::new(SharedPorts::<u32>::default());
        let listen = |_| -> std::io::Result<Option<super::BoxFuture<Option<()>>>> {
            Ok(Some(Box::pin(std::future::pending())))
        };
        let candidates = || (0..2).map(port);
        let first = table.claim(candidates(), client(0), listen).expect("claim");
        let second = table.claim(candidates(), client(0), listen).expect("claim");
        let ports: HashSet<_> = [&first, &second]
            .iter()
            .map(|w| w.as_ref().expect("a port").port())
            .collect();
        assert_eq!(ports.len(), 2, "two ports for two sessions");
        assert!(
            table
                .claim(candidates(), client(0), listen)
                .expect("claim")
                .is_none()
        );
        assert!(
            table
                .claim(candidates(), client(1), listen)
                .expect("claim")
                .is_some()
        );
        drop(first);
        assert!(
            table
                .claim(candidates(), client(0), listen)
                .expect("claim")
                .is_some()
        );
    }
}
