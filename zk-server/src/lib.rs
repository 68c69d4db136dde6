//! `zk-server`: a ZooKeeper-class coordination server on openraft.
//!
//! Crate map (see `shared/DESIGN.md`):
//! - [`tree`]: the replicated znode tree and sessions table (pure, deterministic).
//! - [`raft`]: openraft glue: type config, log store, state machine.
//! - [`storage`]: durable bytes: the write-ahead log, vote/meta file, snapshot files.
//! - [`state`]: what a node shares between apply and its sessions.
//! - [`watch`]: watch registrations and triggering.

pub mod raft;
pub mod state;
pub mod storage;
pub mod tree;
pub mod watch;
