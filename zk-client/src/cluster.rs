//! Ensemble administration: the status of every member, and membership changes
//! (ZooKeeper's dynamic reconfiguration, here raft joint consensus on the leader).

use std::future::Future;

use zk_proto::pb::{self, request::Op as Req, response::Result as R};

use crate::client::Client;
use crate::error::Result;

/// One member of the ensemble as the server that answered sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// Server id (ZooKeeper's myid).
    pub id: u64,
    /// Peer address (raft traffic).
    pub peer_addr: String,
    /// Client address (may be empty if unknown).
    pub client_addr: String,
    /// `leader`, `follower`, `observer`, `candidate`, `standalone` or `unreachable`.
    pub role: String,
    /// Last zxid this member has applied.
    pub applied_zxid: i64,
    /// How many log entries its applied state is behind the leader's.
    pub lag: u64,
    /// True for voting members.
    pub voter: bool,
}

/// The ensemble's members and its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The leader's id (0 if none is known).
    pub leader: u64,
    /// Every member, in id order.
    pub members: Vec<MemberStatus>,
}

impl Client {
    /// Status of every member of the ensemble (asks each member; unreachable ones are
    /// reported as such).
    pub fn cluster_status(&self) -> impl Future<Output = Result<ClusterStatus>> + Send + 'static {
        let call = self.send(
            "cluster_status",
            "/",
            Req::ClusterStatus(pb::ClusterStatusRequest {}),
            None,
        );
        call.map(|r| match r {
            R::ClusterStatus(s) => Some(ClusterStatus {
                leader: s.leader,
                members: s
                    .members
                    .into_iter()
                    .map(|m| MemberStatus {
                        id: m.id,
                        peer_addr: m.peer_addr,
                        client_addr: m.client_addr,
                        role: m.role,
                        applied_zxid: m.applied_zxid,
                        lag: m.lag,
                        voter: m.voter,
                    })
                    .collect(),
            }),
            _ => None,
        })
    }

    fn membership(
        &self,
        op: &'static str,
        action: pb::membership_request::Action,
        id: u64,
        peer_addr: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let call = self.send(
            op,
            "/",
            Req::Membership(pb::MembershipRequest {
                action: action as i32,
                id,
                peer_addr: peer_addr.to_string(),
            }),
            None,
        );
        async move { call.ok().await.map(drop) }
    }

    /// Adds server `id` (reachable at peer address `peer_addr`) as a voting member, or
    /// promotes an observer. It first catches up as a non-voter, then joins the quorum.
    pub fn add_voter(
        &self,
        id: u64,
        peer_addr: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        self.membership(
            "add_voter",
            pb::membership_request::Action::AddVoter,
            id,
            peer_addr,
        )
    }

    /// Adds server `id` as an observer (serves reads, sessions and watches; never votes).
    pub fn add_observer(
        &self,
        id: u64,
        peer_addr: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        self.membership(
            "add_observer",
            pb::membership_request::Action::AddObserver,
            id,
            peer_addr,
        )
    }

    /// Removes server `id` (voter or observer) from the ensemble.
    pub fn remove_member(&self, id: u64) -> impl Future<Output = Result<()>> + Send + 'static {
        self.membership(
            "remove_member",
            pb::membership_request::Action::Remove,
            id,
            "",
        )
    }
}
