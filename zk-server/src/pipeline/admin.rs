//! Ensemble administration requests from clients (`zkcli cluster ...`): the status of
//! every member, and membership changes (executed by the leader).

use zk_proto::pb::{self, request::Op as ReqOp, response::Result as R};
use zk_proto::Code;

use super::{reply, Pipeline};
use crate::api::peer;
use crate::raft::rpc::MembershipChange;
use crate::tree::index_of;

/// Answers a `ClusterStatus` or `Membership` request.
pub async fn execute(p: &Pipeline, req: &pb::Request) -> pb::Response {
    let xid = req.xid;
    match &req.op {
        Some(ReqOp::ClusterStatus(_)) => {
            let statuses = peer::cluster_status(p).await;
            let leader_id = statuses
                .iter()
                .filter_map(|(_, _, _, s)| s.as_ref().and_then(|s| s.leader))
                .next()
                .unwrap_or(0);
            let leader_applied = statuses
                .iter()
                .find(|(id, _, _, _)| *id == leader_id)
                .and_then(|(_, _, _, s)| s.as_ref().map(|s| s.applied_zxid))
                .unwrap_or(0);
            let members = statuses
                .into_iter()
                .map(|(id, voter, member, st)| pb::MemberStatus {
                    id,
                    peer_addr: member.peer_addr.clone(),
                    client_addr: st
                        .as_ref()
                        .map(|s| s.client_addr.clone())
                        .filter(|a| !a.is_empty())
                        .unwrap_or(member.client_addr),
                    role: st
                        .as_ref()
                        .map_or("unreachable".to_string(), |s| s.role.clone()),
                    applied_zxid: st.as_ref().map_or(0, |s| s.applied_zxid),
                    lag: st.as_ref().map_or(0, |s| {
                        index_of(leader_applied).saturating_sub(index_of(s.applied_zxid))
                    }),
                    voter,
                })
                .collect();
            reply::ok(
                xid,
                p.shared.applied_zxid(),
                R::ClusterStatus(pb::ClusterStatusResponse {
                    members,
                    leader: leader_id,
                }),
            )
        }
        Some(ReqOp::Membership(m)) => {
            let change = match pb::membership_request::Action::try_from(m.action) {
                Ok(pb::membership_request::Action::AddVoter) => MembershipChange::AddVoter {
                    id: m.id,
                    peer_addr: m.peer_addr.clone(),
                },
                Ok(pb::membership_request::Action::AddObserver) => MembershipChange::AddObserver {
                    id: m.id,
                    peer_addr: m.peer_addr.clone(),
                },
                Ok(pb::membership_request::Action::Remove) => MembershipChange::Remove { id: m.id },
                Err(_) => {
                    return reply::error(
                        xid,
                        p.shared.applied_zxid(),
                        Code::BadArguments,
                        format!("membership: unknown action {}", m.action),
                    )
                }
            };
            if m.id == 0 {
                return reply::error(
                    xid,
                    p.shared.applied_zxid(),
                    Code::BadArguments,
                    "membership: server id must be > 0",
                );
            }
            if !p.config.clustered() {
                return reply::error(
                    xid,
                    p.shared.applied_zxid(),
                    Code::Unimplemented,
                    "membership: this server runs as a single node (start it with --peers)",
                );
            }
            match peer::membership(p, change).await {
                Ok(()) => reply::ok(xid, p.shared.applied_zxid(), R::Empty(pb::Empty {})),
                Err((code, msg)) => {
                    reply::error(xid, p.shared.applied_zxid(), Code::from_i32(code), msg)
                }
            }
        }
        _ => reply::error(
            xid,
            p.shared.applied_zxid(),
            Code::BadArguments,
            "not an admin request",
        ),
    }
}
