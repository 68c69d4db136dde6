//! The history the clients record: every operation with its invocation and completion
//! times and what it returned. Jepsen's model: an operation that timed out or lost its
//! connection is *indeterminate* (it may or may not have taken effect, at any time after
//! it was invoked), so it completes "never" and the checker may linearize it anywhere
//! after its invocation, or not at all.

use std::sync::Arc;
// tokio's clock: the real one in a live run, the simulated one inside zk-sim (so a
// seed's timestamps, and the checks that order by them, replay exactly).
use tokio::time::Instant;

use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// One operation a client invoked, on one key of one data type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `sync` + `get_data` of a register.
    RegRead { key: u32 },
    /// `set_data(value, Some(expect))` on a register: a compare-and-set on the version.
    RegCas { key: u32, value: u64, expect: i32 },
    /// `create` of a sequential child named after the unique `elem`.
    SetAdd { key: u32, elem: u32 },
    /// `sync` + `get_children` of a set.
    SetRead { key: u32 },
}

impl Op {
    /// The key the operation touches: (type, key); histories are checked per key.
    pub fn key(&self) -> (char, u32) {
        match self {
            Op::RegRead { key } | Op::RegCas { key, .. } => ('r', *key),
            Op::SetAdd { key, .. } | Op::SetRead { key } => ('s', *key),
        }
    }
}

/// What a completed operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ret {
    /// A write that succeeded and returns nothing to check.
    Done,
    /// A register read: the value and the node's version.
    Value { value: u64, version: i32 },
    /// A successful compare-and-set: the node's new version.
    Version(i32),
    /// A set read: the elements, sorted.
    Elems(Vec<u32>),
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// It took effect and returned this.
    Ok(Ret),
    /// It definitely did not take effect (`BadVersion`, `NodeExists`, ...).
    Fail,
    /// Timeout, `ConnectionLoss`, session end: it may or may not have taken effect.
    Unknown,
}

/// One entry of a history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The client (process) that invoked it.
    pub client: usize,
    /// The operation.
    pub op: Op,
    /// Invocation time, microseconds since the history began.
    pub invoke_us: u64,
    /// Completion time; `None` for an indeterminate operation (it completes "never").
    pub complete_us: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A recorder the clients share: `invoke` before sending, `complete` after the reply.
#[derive(Debug, Clone)]
pub struct History {
    start: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
}

/// An invoked operation, waiting for its outcome.
#[derive(Debug)]
pub struct Pending {
    index: usize,
}

impl History {
    /// An empty history starting now.
    pub fn new() -> History {
        History {
            start: Instant::now(),
            entries: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Locks the entries, taking over a poisoned lock (a panicked client task must not
    /// hide the history of the others).
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Records the invocation of `op` by `client`, now.
    pub fn invoke(&self, client: usize, op: Op) -> Pending {
        let mut e = self.lock();
        e.push(Entry {
            client,
            op,
            invoke_us: self.now_us(),
            complete_us: None,
            outcome: Outcome::Unknown,
        });
        Pending { index: e.len() - 1 }
    }

    /// Records how `pending` ended, now (an `Unknown` outcome keeps it open forever).
    pub fn complete(&self, pending: Pending, outcome: Outcome) {
        let now = self.now_us();
        let mut e = self.lock();
        if let Some(entry) = e.get_mut(pending.index) {
            entry.complete_us = match outcome {
                Outcome::Unknown => None,
                _ => Some(now),
            };
            entry.outcome = outcome;
        }
    }

    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}
