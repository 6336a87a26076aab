//! The life of a control connection, as one state: open, the peer done
//! sending, the relay stopping, closed.

/// Where a control connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// Commands are read and run.
    Open,
    /// The client finished sending (end of file) but may still read: what
    /// it sent is answered, then the connection is closed.
    PeerDone,
    /// The relay stops: the command in progress finishes, then `421` and
    /// close. `peer_done`: the client had finished sending, too.
    Stopping { peer_done: bool },
    /// The control connection is closed (by us, or lost).
    Closed,
}

impl Lifecycle {
    /// The relay stops.
    pub(super) fn stopping(self) -> Self {
        match self {
            Lifecycle::Open => Lifecycle::Stopping { peer_done: false },
            Lifecycle::PeerDone => Lifecycle::Stopping { peer_done: true },
            other => other,
        }
    }

    /// The client sent its end of file.
    pub(super) fn peer_done(self) -> Self {
        match self {
            Lifecycle::Open => Lifecycle::PeerDone,
            Lifecycle::Stopping { .. } => Lifecycle::Stopping { peer_done: true },
            other => other,
        }
    }

    /// Whether control bytes are still read.
    pub(super) fn reads(self) -> bool {
        matches!(
            self,
            Lifecycle::Open | Lifecycle::Stopping { peer_done: false }
        )
    }

    /// Whether the client finished sending.
    pub(super) fn is_peer_done(self) -> bool {
        matches!(
            self,
            Lifecycle::PeerDone | Lifecycle::Stopping { peer_done: true }
        )
    }
}
