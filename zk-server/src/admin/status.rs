//! `GET /status`: this node and every member of the ensemble, as JSON (the same facts
//! as `zkcli cluster status`).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::api::peer;
use crate::pipeline::Pipeline;
use crate::tree::index_of;

/// The status document.
pub async fn status(State(p): State<Arc<Pipeline>>) -> Json<Value> {
    let me = peer::status(&p);
    let members = peer::cluster_status(&p).await;
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
    Json(json!({
        "id": me.id,
        "role": me.role,
        "leader": me.leader,
        "term": me.term,
        "serving": p.shared.is_serving(),
        "applied_zxid": me.applied_zxid,
        "last_log_index": me.last_log_index,
        "client_addr": me.client_addr,
        "peer_addr": if p.config.clustered() { Some(me.peer_addr) } else { None },
        "sessions": p.shared.tracker.len(),
        "znodes": p.shared.tree.read().node_count(),
        "watches": p.shared.watches.count(),
        "connections": p.shared.watches.connections(),
        "members": members,
    }))
}
