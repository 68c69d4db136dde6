//! Coordination recipes built only on the public `zk-client` API, one recipe per module.
//!
//! Every lock and leadership carries a fencing token (the zxid that created the holder's
//! node), and writes to the tree can be fenced with `guarded` multis.

pub mod internal;
