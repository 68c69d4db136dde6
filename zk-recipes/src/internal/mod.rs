//! Building blocks shared by the recipes, all on the public client API:
//! - [`retry`]: wait for the connection to come back; retry idempotent steps.
//! - [`parents`]: create a path's missing ancestors (as containers).
//! - [`sequence`]: protected-mode sequential-ephemeral nodes, listing them in order, and
//!   removing one whose create may or may not have happened (cancellation).
//! - [`wait`]: wait for a node's deletion.
//! - [`held`]: a granted node: fencing token, `lost()` monitor, guarded writes, release.
//! - [`contend`]: wait in a queue of sequence nodes until granted, without herd effect.
//! - [`lock_delay`]: the marker that lets a next holder wait after an unclean hand-over.
//!
//! Files named `b_*.rs` belong to the other recipes (registry, config, barriers, queue).

pub mod b_client_source;
pub(crate) mod b_paths;
pub(crate) mod b_retry;
pub(crate) mod contend;
pub(crate) mod held;
pub(crate) mod lock_delay;
pub(crate) mod parents;
pub(crate) mod retry;
pub(crate) mod sequence;
pub(crate) mod wait;
