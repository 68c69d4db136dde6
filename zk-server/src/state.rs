//! The state one node shares between its raft state machine (the only writer of the
//! tree) and its sessions (readers, watch registration).
//!
//! Lock order: `tree` before the watch manager's inner lock. Apply holds `tree` for
//! writing while it triggers watches, and a read that registers a watch holds `tree`
//! for reading while it registers: so no event can slip between a read and its watch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admin::metrics::Metrics;
use crate::session::expiry::SessionTracker;
use crate::storage::StorageStats;
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
    /// Session liveness. Every node tracks every open session (apply adds and removes
    /// them); the leader expires them, followers report the ones they hear from.
    pub tracker: SessionTracker,
    /// Whether this node may serve clients now (it has a leader it hears from, or it is
    /// a leader with a live quorum). Connections are refused and closed while false.
    serving: AtomicBool,
    /// When this node last heard from its leader (AppendEntries), for followers.
    leader_contact: Mutex<Option<Instant>>,
    /// When `serving` last changed (process start until the first change), for
    /// `/status`: how long a node has (not) been serving.
    serving_changed: Mutex<Instant>,
    /// Counters for `/metrics`, `/status` and the four-letter words.
    pub metrics: Arc<Metrics>,
    /// Client operations applied since this process started (snapshot scheduling).
    pub applied_ops: std::sync::atomic::AtomicU64,
    /// The WAL writer's counters (fsync latency, group commits) for `/metrics`; the
    /// node's log store's own when built by [`Shared::with_storage_stats`].
    pub storage: Arc<StorageStats>,
}

impl Shared {
    /// Empty state: a fresh tree, no watches, applied zxid 0, storage counters of its own.
    pub fn new() -> Shared {
        Shared::with_storage_stats(Arc::new(StorageStats::new()))
    }

    /// [`Shared::new`] reporting `storage` (the log store's counters) in `/metrics`.
    pub fn with_storage_stats(storage: Arc<StorageStats>) -> Shared {
        Shared {
            tree: RwLock::new(DataTree::new()),
            watches: WatchManager::new(),
            applied: watch::Sender::new(0),
            tracker: SessionTracker::new(),
            serving: AtomicBool::new(false),
            leader_contact: Mutex::new(None),
            serving_changed: Mutex::new(Instant::now()),
            metrics: Arc::new(Metrics::new()),
            applied_ops: std::sync::atomic::AtomicU64::new(0),
            storage,
        }
    }

    /// True while this node serves clients.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Sets whether this node serves clients; returns the previous value.
    pub fn set_serving(&self, serving: bool) -> bool {
        let mut changed = self.serving_changed.lock();
        let was = self.serving.swap(serving, Ordering::AcqRel);
        if was != serving {
            *changed = Instant::now();
        }
        was
    }

    /// When [`Shared::is_serving`] last changed (or the process started).
    pub fn serving_changed(&self) -> Instant {
        *self.serving_changed.lock()
    }

    /// Records contact from the leader (a successful AppendEntries).
    pub fn leader_contacted(&self) {
        *self.leader_contact.lock() = Some(Instant::now());
    }

    /// When the leader was last heard from.
    pub fn last_leader_contact(&self) -> Option<Instant> {
        *self.leader_contact.lock()
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
