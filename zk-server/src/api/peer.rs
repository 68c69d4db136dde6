//! The peer service: raft RPCs into openraft, and the rest of the peer protocol
//! (forwarded write streams, read index, session touches, status, membership) handled here.

use std::sync::Arc;
use std::time::Duration;

use openraft::{ChangeMembers, ServerState};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use zk_proto::peer::{peer_server::Peer, PeerMessage};
use zk_proto::Code;

use crate::pipeline::{forward, submit, Pipeline};
use crate::raft::rpc::{MembershipChange, NodeStatus, PeerFailure, PeerReply, PeerRequest};
use crate::raft::{Member, NodeId};

/// How many streams reset by the calling peer may wait to be accepted before the peer
/// server closes the connection (`ENHANCE_YOUR_CALM`). hyper's default, 20, guards
/// against the HTTP/2 rapid-reset attack; between peers, a cancelled RPC is normal
/// (openraft abandons an AppendEntries after one heartbeat interval), and a partition
/// that keeps the sockets open holds every request sent into it, with its reset, until
/// it heals and delivers them all at once: dozens per second of partition. Closing the
/// connection then cut the new leader off from the server it was partitioned from
/// (issue #7, docs/reliability.md). A connection that stays silent is closed by the
/// dialler's keep-alive after about 25 s, which bounds the pile to some hundreds at a
/// 50 ms heartbeat; the limit leaves room for much shorter heartbeats.
pub const MAX_PENDING_RESET_STREAMS: usize = 10_000;

/// Serves peers.
pub struct PeerService {
    pipeline: Arc<Pipeline>,
    /// Turns true when the node stops: long-lived forward streams end then.
    stop: watch::Receiver<bool>,
}

impl PeerService {
    /// A service over this node's pipeline; `stop` ends its forward streams.
    pub fn new(pipeline: Arc<Pipeline>, stop: watch::Receiver<bool>) -> PeerService {
        PeerService { pipeline, stop }
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    type ForwardStream = forward::AnswerStream;

    async fn forward(
        &self,
        request: Request<Streaming<PeerMessage>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        Ok(Response::new(forward::serve(
            self.pipeline.clone(),
            request.into_inner(),
            self.stop.clone(),
        )))
    }

    async fn call(&self, request: Request<PeerMessage>) -> Result<Response<PeerMessage>, Status> {
        let req: PeerRequest = postcard::from_bytes(&request.get_ref().payload)
            .map_err(|e| Status::invalid_argument(format!("bad peer request: {e}")))?;
        if self.pipeline.config.tls.peer_verify_id {
            let info = request.extensions().get::<crate::tls::io::ConnInfo>();
            let names = info.and_then(|i| i.cert_names.as_deref());
            crate::tls::peer_id::authorize(&self.pipeline, names, &req)?;
        }
        let reply = handle(&self.pipeline, req).await;
        let payload = postcard::to_allocvec(&reply)
            .map_err(|e| Status::internal(format!("cannot encode reply: {e}")))?;
        Ok(Response::new(PeerMessage {
            payload: payload.into(),
        }))
    }
}

fn failure(code: Code, msg: impl Into<String>) -> PeerFailure {
    (code.as_i32(), msg.into())
}

async fn handle(p: &Pipeline, req: PeerRequest) -> PeerReply {
    match req {
        PeerRequest::AppendEntries(rpc) => {
            let prev = rpc.prev_log_id.map_or(0, |l| l.index);
            let last = rpc.entries.last().map_or(prev, |e| e.log_id.index);
            crate::mark!(
                "ae_recv",
                last,
                n = rpc.entries.len(),
                commit = rpc.leader_commit.map_or(0, |l| l.index)
            );
            let r = p.raft.append_entries(rpc).await;
            crate::mark!("ae_done", last);
            if matches!(&r, Ok(resp) if resp.is_success()) {
                p.shared.leader_contacted();
            }
            PeerReply::AppendEntries(r)
        }
        PeerRequest::Vote(rpc) => PeerReply::Vote(p.raft.vote(rpc).await),
        PeerRequest::InstallSnapshot(rpc) => {
            let r = p.raft.install_snapshot(rpc).await;
            if r.is_ok() {
                p.shared.leader_contacted();
            }
            PeerReply::InstallSnapshot(r)
        }
        PeerRequest::ReadIndex => PeerReply::ReadIndex(
            submit::leader_read_index(&p.raft)
                .await
                .map_err(|(c, m)| failure(c, m)),
        ),
        PeerRequest::Touch(sessions) => {
            for id in sessions {
                if let Some(live) = p.shared.tracker.get(id) {
                    live.touch();
                }
            }
            PeerReply::Touched
        }
        PeerRequest::Status => PeerReply::Status(status(p)),
        PeerRequest::Campaign => {
            let m = p.raft.metrics().borrow().clone();
            if is_voter(&m, p.node_id()) && m.state != openraft::ServerState::Leader {
                tracing::info!("asked to campaign by a survivor whose log is behind ours");
                let _ = p.raft.trigger().elect().await;
            }
            PeerReply::Touched
        }
        PeerRequest::Membership(change) => PeerReply::Membership(membership(p, change).await),
    }
}

/// Whether `id` votes in the membership `m` shows.
fn is_voter(m: &openraft::RaftMetrics<NodeId, Member>, id: NodeId) -> bool {
    m.membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id)
}

/// This node's status.
pub fn status(p: &Pipeline) -> NodeStatus {
    let m = p.raft.metrics().borrow().clone();
    let voter = is_voter(&m, p.node_id());
    let initialized = m.membership_config.membership().nodes().next().is_some();
    let role = match m.state {
        ServerState::Leader if !p.config.clustered() => "standalone",
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Shutdown => "shutdown",
        _ if !voter => "observer",
        _ => "follower",
    };
    NodeStatus {
        id: p.node_id(),
        initialized,
        role: role.to_string(),
        leader: m.current_leader,
        term: m.current_term,
        applied_zxid: p.shared.applied_zxid(),
        last_log_index: m.last_log_index.unwrap_or(0),
        peer_addr: p.config.peer_bind_addr(),
        client_addr: p.client_addr.clone(),
        voted_for: m.vote.leader_id().voted_for(),
    }
}

/// Executes a membership change on the leader (forwarding it there if needed).
pub async fn membership(p: &Pipeline, change: MembershipChange) -> Result<(), PeerFailure> {
    let Some((leader, member)) = submit::leader(&p.raft).await else {
        return Err(failure(
            Code::ConnectionLoss,
            "no leader: the ensemble has no quorum",
        ));
    };
    if leader != p.node_id() {
        return match p
            .peers
            .call(
                &member.peer_addr,
                &PeerRequest::Membership(change),
                Duration::from_secs(30),
            )
            .await
        {
            Ok(PeerReply::Membership(r)) => r,
            Ok(other) => Err(failure(
                Code::SystemError,
                format!("unexpected reply {other:?}"),
            )),
            Err(e) => Err(failure(
                Code::ConnectionLoss,
                format!("leader unreachable: {e}"),
            )),
        };
    }
    let raft_err = |e: &dyn std::fmt::Display| {
        failure(Code::SystemError, format!("membership change failed: {e}"))
    };
    match change {
        MembershipChange::AddObserver { id, peer_addr }
        | MembershipChange::AddVoter { id, peer_addr }
            if peer_addr.is_empty() =>
        {
            Err(failure(
                Code::BadArguments,
                format!("server {id}: a peer address is required"),
            ))
        }
        MembershipChange::AddObserver { id, peer_addr } => {
            let node = member_for(p, id, &peer_addr).await?;
            p.raft
                .add_learner(id, node, true)
                .await
                .map(|_| ())
                .map_err(|e| raft_err(&e))
        }
        MembershipChange::AddVoter { id, peer_addr } => {
            let m = p.raft.metrics().borrow().clone();
            let known = m.membership_config.membership().get_node(&id).is_some();
            if !known {
                let node = member_for(p, id, &peer_addr).await?;
                p.raft
                    .add_learner(id, node, true)
                    .await
                    .map_err(|e| raft_err(&e))?;
            }
            p.raft
                .change_membership(
                    ChangeMembers::AddVoterIds([id].into_iter().collect()),
                    false,
                )
                .await
                .map(|_| ())
                .map_err(|e| raft_err(&e))
        }
        MembershipChange::Remove { id } => {
            let m = p.raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            let change = if membership.voter_ids().any(|v| v == id) {
                ChangeMembers::RemoveVoters([id].into_iter().collect())
            } else if membership.get_node(&id).is_some() {
                ChangeMembers::RemoveNodes([id].into_iter().collect())
            } else {
                return Err(failure(
                    Code::BadArguments,
                    format!("server {id} is not a member"),
                ));
            };
            p.raft
                .change_membership(change, false)
                .await
                .map(|_| ())
                .map_err(|e| raft_err(&e))
        }
    }
}

/// The member record for server `id` at `peer_addr`: it must answer there (a membership
/// change to a dead or wrong address is refused instead of stalling replication).
async fn member_for(p: &Pipeline, id: NodeId, peer_addr: &str) -> Result<Member, PeerFailure> {
    p.peers.learn_new(id, peer_addr);
    match p
        .peers
        .call(peer_addr, &PeerRequest::Status, Duration::from_secs(2))
        .await
    {
        Ok(PeerReply::Status(s)) if s.id == id => Ok(Member::new(peer_addr, s.client_addr)),
        Ok(PeerReply::Status(s)) => Err(failure(
            Code::BadArguments,
            format!(
                "the server at {peer_addr} is server {}, not server {id}",
                s.id
            ),
        )),
        Ok(other) => Err(failure(
            Code::SystemError,
            format!("unexpected reply from {peer_addr}: {other:?}"),
        )),
        Err(e) => Err(failure(
            Code::BadArguments,
            format!("server {id} does not answer at {peer_addr} (start it first): {e}"),
        )),
    }
}

/// Statuses of every member (this node's own without a call), in id order. Members
/// that do not answer are reported with role "unreachable".
pub async fn cluster_status(p: &Pipeline) -> Vec<(NodeId, bool, Member, Option<NodeStatus>)> {
    let m = p.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let mut calls = Vec::new();
    for (id, member) in membership.nodes() {
        let (id, member) = (*id, member.clone());
        let voter = voters.contains(&id);
        let peers = p.peers.clone();
        let me = (id == p.node_id()).then(|| status(p));
        calls.push(async move {
            let st = match me {
                Some(s) => Some(s),
                None => match peers
                    .call(
                        &member.peer_addr,
                        &PeerRequest::Status,
                        Duration::from_millis(800),
                    )
                    .await
                {
                    Ok(PeerReply::Status(s)) => Some(s),
                    _ => None,
                },
            };
            (id, voter, member, st)
        });
    }
    futures::future::join_all(calls).await
}
