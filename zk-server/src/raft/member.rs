//! What the cluster membership records about each server.

use serde::{Deserialize, Serialize};

/// A server of the ensemble: where its peers and its clients reach it. This is the raft
/// `Node` type, so it is replicated with every membership change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Peer address (raft RPCs, forwarding), `host:port`.
    pub peer_addr: String,
    /// Client address, `host:port` (empty if not known yet).
    pub client_addr: String,
}

impl Member {
    /// A member with both addresses.
    pub fn new(peer_addr: impl Into<String>, client_addr: impl Into<String>) -> Member {
        Member {
            peer_addr: peer_addr.into(),
            client_addr: client_addr.into(),
        }
    }
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer {} client {}", self.peer_addr, self.client_addr)
    }
}
