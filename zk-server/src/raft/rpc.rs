//! The messages of the peer protocol (`proto/peer.proto` carries them postcard-encoded).

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::member::Member;
use super::{NodeId, TypeConfig};
use crate::tree::{ApplyResult, Command};

/// A failure reported to the calling peer: ZooKeeper code and message.
pub type PeerFailure = (i32, String);

/// One message on a follower's forward stream: a batch of writes for the leader to
/// queue, in order, behind everything the stream carried before.
pub type ForwardBatch = Vec<Command>;

/// The leader's answer to one [`ForwardBatch`] (answers come in stream order): per
/// command, its zxid and apply result, or why it failed.
pub type ForwardOutcome = Vec<Result<(i64, ApplyResult), PeerFailure>>;

/// A membership change, executed by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add (or promote) a voting member.
    AddVoter { id: NodeId, peer_addr: String },
    /// Add a non-voting member (ZooKeeper's observer, raft's learner).
    AddObserver { id: NodeId, peer_addr: String },
    /// Remove a member (voter or observer).
    Remove { id: NodeId },
}

/// A request from one server to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// The leader's read index (for `sync` on a follower).
    ReadIndex,
    /// Sessions a follower heard from since its last report.
    Touch(Vec<i64>),
    /// This server's status.
    Status,
    /// A membership change (forwarded to the leader).
    Membership(MembershipChange),
    /// "Your log is ahead of mine: start an election now." Sent by the survivor that
    /// noticed the leader's death to the one that can win (see `node::watch_leader_process`).
    Campaign,
}

/// One member's view of itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    /// Has this server a raft log (cluster bootstrapped)?
    pub initialized: bool,
    /// leader / follower / observer / candidate / standalone.
    pub role: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    /// Last applied zxid.
    pub applied_zxid: i64,
    /// Last log index.
    pub last_log_index: u64,
    pub peer_addr: String,
    pub client_addr: String,
    /// The candidate this server's vote in `term` is for (itself when it leads).
    pub voted_for: Option<NodeId>,
}

/// A reply to a [`PeerRequest`], same variant.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    ReadIndex(Result<u64, PeerFailure>),
    Touched,
    Status(NodeStatus),
    Membership(Result<(), PeerFailure>),
}

/// Membership as reported to operators.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: NodeId,
    pub member: Member,
    pub voter: bool,
}
