//! `cluster status`, `cluster add-voter`, `cluster add-observer`, `cluster remove`

use serde_json::json;
use zk_client::Client;

use crate::output::{hex, Output};
use crate::CmdResult;

/// A membership change.
pub enum Change {
    AddVoter(u64, String),
    AddObserver(u64, String),
    Remove(u64),
}

/// Prints one line per member: id, role, addresses, applied zxid, lag.
pub async fn status(client: &Client, out: &Output) -> CmdResult {
    let s = client.cluster_status().await?;
    out.emit(
        || {
            let mut lines = vec![format!(
                "{:<4} {:<12} {:<22} {:<22} {:<20} {}",
                "id", "role", "client", "peer", "applied_zxid", "lag"
            )];
            for m in &s.members {
                lines.push(format!(
                    "{:<4} {:<12} {:<22} {:<22} {:<20} {}",
                    m.id,
                    m.role,
                    if m.client_addr.is_empty() {
                        "-"
                    } else {
                        &m.client_addr
                    },
                    if m.peer_addr.is_empty() {
                        "-"
                    } else {
                        &m.peer_addr
                    },
                    hex(m.applied_zxid),
                    m.lag
                ));
            }
            Some(lines.join("\n"))
        },
        || {
            json!({
                "leader": s.leader,
                "members": s.members.iter().map(|m| json!({
                    "id": m.id,
                    "role": m.role,
                    "voter": m.voter,
                    "client_addr": m.client_addr,
                    "peer_addr": m.peer_addr,
                    "applied_zxid": m.applied_zxid,
                    "lag": m.lag,
                })).collect::<Vec<_>>(),
            })
        },
    );
    Ok(())
}

/// Applies a membership change through the leader.
pub async fn change(client: &Client, out: &Output, change: Change) -> CmdResult {
    let (what, id) = match &change {
        Change::AddVoter(id, addr) => {
            client.add_voter(*id, addr).await?;
            ("added voter", *id)
        }
        Change::AddObserver(id, addr) => {
            client.add_observer(*id, addr).await?;
            ("added observer", *id)
        }
        Change::Remove(id) => {
            client.remove_member(*id).await?;
            ("removed", *id)
        }
    };
    out.emit(
        || Some(format!("{what} {id}")),
        || json!({ "change": what, "id": id }),
    );
    Ok(())
}
