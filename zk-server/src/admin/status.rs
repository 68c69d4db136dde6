//! The ensemble part of `GET /status`: every member, as JSON (the same facts as
//! `zkcli cluster status`).

use serde_json::{json, Value};

use crate::api::peer;
use crate::pipeline::Pipeline;
use crate::tree::index_of;

/// Why this node does (not) serve, as JSON (part of `/status`): how long it has been
/// in its serving state, when it last heard from its leader, and its last failed peer
/// call.
pub fn liveness(p: &Pipeline) -> Value {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    json!({
        "serving_changed_ms_ago": ms(p.shared.serving_changed().elapsed()),
        "leader_contact_ms_ago": p.shared.last_leader_contact().map(|t| ms(t.elapsed())),
        "last_peer_error": p.peers.last_error().map(|(at, message)| json!({
            "ms_ago": ms(at.elapsed()),
            "message": message,
        })),
    })
}

/// Every member of the ensemble, as JSON (part of `/status`).
pub async fn members(p: &Pipeline) -> Value {
    let me = peer::status(p);
    let members = peer::cluster_status(p).await;
    let leader_applied = members
        .iter()
        .find(|(id, _, _, _)| Some(*id) == me.leader)
        .and_then(|(_, _, _, s)| s.as_ref().map(|s| s.applied_zxid))
        .unwrap_or(me.applied_zxid);
    let members: Vec<Value> = members
        .into_iter()
        .map(|(id, voter, member, st)| {
            json!({
                "id": id,
                "voter": voter,
                "peer_addr": member.peer_addr,
                "client_addr": st.as_ref().map(|s| s.client_addr.clone()).unwrap_or(member.client_addr),
                "role": st.as_ref().map_or("unreachable".to_string(), |s| s.role.clone()),
                "applied_zxid": st.as_ref().map(|s| s.applied_zxid),
                "lag": st.as_ref().map(|s| index_of(leader_applied).saturating_sub(index_of(s.applied_zxid))),
            })
        })
        .collect();
    Value::Array(members)
}
