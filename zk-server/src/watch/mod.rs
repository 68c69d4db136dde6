//! Watches: per-node registrations (not replicated), triggered by the state machine's
//! apply, delivered on each session's ordered outbound queue.

pub mod manager;

pub use manager::WatchManager;
