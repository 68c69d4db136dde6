//! Client sessions on this node: the per-connection task, its outbound queue, and the
//! leader's liveness tracking.

pub mod conn;
pub mod expiry;
pub mod outbound;
