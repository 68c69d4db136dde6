//! Apache ZooKeeper's own client protocol (jute records in 4-byte length-prefixed
//! frames), served on the client port next to the native gRPC protocol, so existing
//! ZooKeeper clients (Java, Curator, kazoo, zkCli.sh, the C client, Rust's
//! `zookeeper-client`) work unchanged against the same tree and sessions.
//!
//! - [`jute`]: the encoding and the connect records.
//! - [`translate`]: ZooKeeper requests to native requests and native replies back.
//! - [`conn`]: the connection task, feeding the native session task
//!   ([`crate::session::conn::serve`]): one request pipeline for both protocols.

pub mod conn;
pub mod jute;
pub mod translate;

/// Default `--max-frame-bytes`: ZooKeeper's `jute.maxbuffer` (0xfffff) plus 1 KiB of
/// slack for headers.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 0xfffff + 1024;
