//! The replicated transaction format: what a raft log entry carries and what applying
//! it returns. Everything an apply needs is inside the entry (the leader stamps the
//! time once), so every replica computes the same tree and the same `Stat`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zk_proto::Code;

use super::acl::{Acl, Id};

/// Node kinds, with ZooKeeper's `CreateMode` integer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    Persistent = 0,
    Ephemeral = 1,
    PersistentSequential = 2,
    EphemeralSequential = 3,
    Container = 4,
    PersistentWithTtl = 5,
    PersistentSequentialWithTtl = 6,
}

impl CreateMode {
    /// The mode for ZooKeeper's integer flag.
    pub fn from_i32(v: i32) -> Option<CreateMode> {
        Some(match v {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }
    /// True for the sequential variants.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    /// True for the ephemeral variants.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    /// True for the TTL variants.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// One write operation. `version == -1` means "any version".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Create a node; for sequential modes `path` is the prefix the counter is appended to.
    Create {
        path: String,
        data: Bytes,
        mode: CreateMode,
        /// Milliseconds, only for TTL modes (> 0).
        ttl_ms: i64,
        /// The new node's ACL as the client sent it (validated and `auth` expanded at
        /// apply).
        acl: Vec<Acl>,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Bytes,
        version: i32,
    },
    /// Only inside a multi: fails with BadVersion / NoNode, changes nothing.
    Check {
        path: String,
        version: i32,
    },
    /// Replace a node's ACL; `version` is checked against its aversion.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
}

/// A log entry's payload: the raft `D` type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Open a session. Its id is derived from the entry's zxid at apply time
    /// ([`session_id_for`]), so ids are unique and never reused.
    CreateSession { timeout_ms: u32, password: [u8; 16] },
    /// Close (or expire) a session: its ephemerals are deleted in this one transaction.
    CloseSession { session: i64 },
    /// One client write (`multi == false`, exactly one op) or an all-or-nothing multi.
    Txn {
        session: i64,
        /// Leader's wall clock, ms since the Unix epoch: ctime/mtime of this transaction.
        time_ms: i64,
        ops: Vec<TxnOp>,
        multi: bool,
        /// The sending session's identities when it sent this (its connection's
        /// `addauth`s and client address): what the ACL checks of apply see.
        auth: Vec<Id>,
    },
    /// Server-initiated removal of an empty container or an expired TTL node; the
    /// conditions are checked again at apply time against `time_ms`.
    Reap { path: String, time_ms: i64 },
}

/// Bits of a zxid below the raft log index. One log entry carries a [`Batch`] of
/// transactions (group commit: openraft 0.9 flushes its log once per entry on the
/// leader, so batching is what lets concurrent writes share an fsync); transaction `i`
/// of the entry at log index `L` has zxid `L << 16 | i`. Zxids stay monotonic, unique
/// and never reused, and order exactly as the log does.
pub const ZXID_BATCH_BITS: u32 = 16;

/// Most transactions one log entry may carry.
pub const MAX_BATCH: usize = (1 << ZXID_BATCH_BITS) - 1;

/// The zxid of transaction `position` of the entry at log index `index`.
pub fn zxid_of(index: u64, position: usize) -> i64 {
    ((index as i64) << ZXID_BATCH_BITS) | (position.min(MAX_BATCH) as i64)
}

/// The highest zxid an entry at `index` can hold: the node's applied zxid once the
/// entry is applied (so it is >= every zxid a client can have seen from that entry).
pub fn zxid_end(index: u64) -> i64 {
    zxid_of(index, MAX_BATCH)
}

/// The raft log index a zxid belongs to.
pub fn index_of(zxid: i64) -> u64 {
    (zxid.max(0) >> ZXID_BATCH_BITS) as u64
}

/// A raft log entry's payload: the transactions proposed together, applied in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch(pub Vec<Command>);

/// The session id a `CreateSession` applied at `zxid` gets.
pub fn session_id_for(zxid: i64) -> i64 {
    (1_i64 << 56) | zxid
}

/// Apache ZooKeeper's Stat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// A failed operation: ZooKeeper's code plus a message naming the op and the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct TreeError {
    /// ZooKeeper's wire value (see [`Code`]).
    pub code: i32,
    pub message: String,
}

impl TreeError {
    /// An error with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> TreeError {
        TreeError {
            code: code.as_i32(),
            message: message.into(),
        }
    }
    /// The code as a [`Code`].
    pub fn code(&self) -> Code {
        Code::from_i32(self.code)
    }
}

/// What one successful write op produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpOutput {
    /// The actual path (with the sequence suffix) and the new node's Stat.
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    /// The node's Stat after the write.
    DataSet {
        stat: Stat,
    },
    Checked,
    /// The node's Stat after a setACL.
    AclSet {
        stat: Stat,
    },
}

/// What applying a [`Command`] returned: the raft `R` type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApplyResult {
    /// A new session.
    SessionCreated {
        id: i64,
        timeout_ms: u32,
        password: [u8; 16],
    },
    /// `Ok` if the session existed and is now closed; `Err(SessionExpired)` otherwise.
    SessionClosed(Result<(), TreeError>),
    /// A single op's result.
    Op(Result<OpOutput, TreeError>),
    /// A multi: all outputs, or the index of the failing op and its error (nothing applied).
    Multi(Result<Vec<OpOutput>, (usize, TreeError)>),
    /// Whether a reap removed the node.
    Reaped(bool),
    /// Raft-internal entries (blank, membership) carry no command.
    Nothing,
}

/// What changed in the tree; the watch manager turns these into watch events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Deleted,
    DataChanged,
    /// The node's child list changed (a child was created or deleted).
    ChildrenChanged,
}

/// One change to one path, in the order the transaction made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEvent {
    pub path: String,
    pub kind: ChangeKind,
    /// For `Deleted`: the removed node's ACL, so watchers are checked for READ against
    /// it (the node is gone when the watches fire). `None` for the other kinds: their
    /// node is looked up in the tree.
    pub acl: Option<super::acl::AclList>,
}
