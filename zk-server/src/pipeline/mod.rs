//! The request pipeline of one node (ZooKeeper's request processors, small):
//! [`prep`] validates and classifies a request (a write becomes a [`Command`]),
//! [`submit`] hands writes to raft in session order, [`read`] answers reads from the
//! local applied tree (registering watches in the same critical section), and
//! [`reply`] turns results into protocol responses.

pub mod admin;
pub mod forward;
pub mod prep;
pub mod read;
pub mod reply;
pub mod submit;

use std::sync::Arc;

use crate::config::Config;
use crate::raft::Raft;
use crate::state::Shared;
use crate::tree::Command;

/// Everything a connection needs from its node.
pub struct Pipeline {
    /// This node's configuration.
    pub config: Config,
    /// The tree, watches and applied zxid.
    pub shared: Arc<Shared>,
    /// The raft handle.
    pub raft: Raft,
    /// The write queue into raft (batches writes into log entries).
    pub proposer: submit::Proposer,
    /// Channels to the other servers.
    pub peers: crate::raft::network::Peers,
    /// The bound client address (reported in status).
    pub client_addr: String,
}

impl Pipeline {
    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }
}

/// A request after `prep`: how the connection must schedule it.
#[derive(Debug)]
pub enum Prepared {
    /// A write: goes through raft, answered when applied.
    Write(Command),
    /// A read (or local watch operation): answered from the local tree, in order.
    Read,
    /// `sync`: answered once this node has applied everything committed before it.
    Sync(String),
    /// Close the session.
    Close,
    /// Ensemble administration (status, membership): answered in order, asynchronously.
    Admin,
    /// Rejected before reaching raft: the error reply.
    Rejected(zk_proto::pb::Response),
}
