//! Path -> watchers; turns tree changes into watch events on session queues.

use crate::tree::TreeEvent;

/// STUB: replaced by the real manager; `trigger` is the contract with the state machine.
#[derive(Default)]
pub struct WatchManager {}

impl WatchManager {
    /// No watches.
    pub fn new() -> WatchManager {
        WatchManager {}
    }

    /// Called by apply, with the tree's write lock held, for the changes of the
    /// transaction at `zxid`: fires the matching watches onto their sessions' queues.
    pub fn trigger(&self, _zxid: i64, _events: &[TreeEvent]) {}
}
