//! The replicated state: the znode tree and the sessions table. Pure, synchronous, no
//! I/O, no clock: `apply` is deterministic given (zxid, command), so every replica
//! computes the same tree and the same Stat.

pub mod txn;

pub use txn::{
    session_id_for, ApplyResult, ChangeKind, Command, CreateMode, OpOutput, Stat, TreeError,
    TreeEvent, TxnOp,
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A session as the replicated state knows it (liveness is tracked by the leader, not here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub timeout_ms: u32,
    pub password: [u8; 16],
}

/// The znode tree plus the sessions table.
///
/// STUB: the real implementation replaces the bodies; the signatures are the contract.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataTree {}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`; no sessions.
    pub fn new() -> DataTree {
        DataTree {}
    }

    /// Applies one committed command at `zxid`, appending what changed to `events` (in
    /// order). Never panics on any input: bad requests become `TreeError`s.
    pub fn apply(&mut self, _zxid: i64, _cmd: &Command, _events: &mut Vec<TreeEvent>) -> ApplyResult {
        ApplyResult::Nothing
    }

    /// Data and Stat of a node, or NoNode.
    pub fn get_data(&self, path: &str) -> Result<(Bytes, Stat), TreeError> {
        Err(TreeError::new(zk_proto::Code::NoNode, format!("no node at {path}")))
    }

    /// Stat of a node if it exists.
    pub fn exists(&self, _path: &str) -> Option<Stat> {
        None
    }

    /// Child names (sorted) and the node's Stat, or NoNode.
    pub fn get_children(&self, path: &str) -> Result<(Vec<String>, Stat), TreeError> {
        Err(TreeError::new(zk_proto::Code::NoNode, format!("no node at {path}")))
    }

    /// Paths of the session's ephemeral nodes that start with `prefix` (sorted).
    pub fn get_ephemerals(&self, _session: i64, _prefix: &str) -> Vec<String> {
        Vec::new()
    }

    /// Number of all descendants of `path` (not counting itself), or NoNode.
    pub fn all_children_number(&self, path: &str) -> Result<i32, TreeError> {
        Err(TreeError::new(zk_proto::Code::NoNode, format!("no node at {path}")))
    }

    /// The session, if open.
    pub fn session(&self, _id: i64) -> Option<&SessionInfo> {
        None
    }

    /// All open sessions.
    pub fn sessions(&self) -> Vec<(i64, SessionInfo)> {
        Vec::new()
    }

    /// Containers that had children and have none, and TTL nodes with no children not
    /// modified for their TTL as of `now_ms`: what the leader should `Reap`.
    pub fn reap_candidates(&self, _now_ms: i64) -> Vec<String> {
        Vec::new()
    }

    /// Number of znodes, the root and `/zookeeper` included.
    pub fn node_count(&self) -> usize {
        0
    }

    /// Serialises the whole tree and sessions table for a snapshot.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Rebuilds a tree from [`DataTree::to_snapshot_bytes`]; a corrupt input is an error.
    pub fn from_snapshot_bytes(_bytes: &[u8]) -> Result<DataTree, TreeError> {
        Ok(DataTree::new())
    }
}
