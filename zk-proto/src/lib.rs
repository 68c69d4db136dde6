//! The wire contract shared by `zk-server` and `zk-client`.
//!
//! - [`pb`]: the generated protobuf messages and the tonic service (`proto/zk.proto`).
//! - [`Code`]: Apache ZooKeeper's error codes, one table for both sides.
//! - [`path`]: znode path validation, ZooKeeper's rules, used by both sides.
//! - [`codec`]: the gRPC codec of both services (prost through a scratch buffer).

pub mod code;
pub mod codec;
pub mod path;

pub use code::Code;

/// Generated protobuf messages and the `ZooKeeper` gRPC service.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("zk.v1");
}

/// Generated peer-to-peer service (`proto/peer.proto`): an opaque payload per call.
#[allow(clippy::all, missing_docs)]
pub mod peer {
    tonic::include_proto!("zk.peer.v1");
}

/// The xid of a ping request and its reply (ZooKeeper uses -2 too).
pub const PING_XID: i64 = -2;
/// The xid of a close-session request.
pub const CLOSE_XID: i64 = -3;
