//! openraft glue. Every openraft type is named only under this module, so a future
//! openraft upgrade touches one place.

use std::io::Cursor;

pub mod caller;
pub mod commit_push;
mod log_memory;
pub mod log_store;
#[cfg(test)]
mod restart_tests;
pub mod runtime;
pub mod state_machine;
#[cfg(test)]
mod storage_suite;

pub use log_store::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachine};

use crate::tree::{ApplyResult, Batch};

/// Node ids are ZooKeeper's `myid`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The raft type configuration: a log entry carries a [`Batch`] of transactions,
    /// apply returns one [`ApplyResult`] per transaction.
    pub TypeConfig:
        D = Batch,
        R = Vec<ApplyResult>,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = runtime::NodeRuntime,
);

/// The raft handle of a node.
pub type Raft = openraft::Raft<TypeConfig>;

pub mod member;
pub mod network;
pub mod rpc;

pub use member::Member;
