//! The state one node shares between its raft state machine (the only writer of the
//! tree) and its sessions (readers, watch registration).
//!
//! Lock order: `tree` before the watch manager's inner lock. Apply holds `tree` for
//! writing while it triggers watches, and a read that registers a watch holds `tree`
//! for reading while it registers: so no event can slip between a read and its watch.

use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::admin::metrics::Metrics;
use crate::tree::DataTree;
use crate::watch::WatchManager;

/// Shared per-node state.
pub struct Shared {
    /// The replicated tree, written only by the state machine's apply.
    pub tree: RwLock<DataTree>,
    /// Watch registrations of the sessions connected to this node.
    pub watches: WatchManager,
    /// The last applied zxid (raft log index); sessions wait on it.
    pub applied: watch::Sender<i64>,
    /// Counters for `/metrics`, `/status` and the four-letter words.
    pub metrics: Arc<Metrics>,
}

impl Shared {
    /// Empty state: a fresh tree, no watches, applied zxid 0.
    pub fn new() -> Shared {
        Shared {
            tree: RwLock::new(DataTree::new()),
            watches: WatchManager::new(),
            applied: watch::Sender::new(0),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// The last applied zxid.
    pub fn applied_zxid(&self) -> i64 {
        *self.applied.borrow()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}
