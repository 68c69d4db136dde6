//! Peer certificates tied to server ids (`--peer-tls-verify-id`). Peer mutual TLS alone
//! proves "a server of this ensemble's CA", not "server 3": a node holding server 2's
//! certificate could vote as 3, send AppendEntries as leader 3 or re-register 3 at its
//! own address. With verification on, a certificate names server `N` when
//!
//! - its subject CN or one of its SAN DNS names is `server.N` (zoo.cfg's `server.N=`), or
//! - one of its SAN DNS names / IP addresses is the host of server N's peer address in
//!   the current membership, and no other member has that host (on a shared host, such
//!   as every test ensemble on 127.0.0.1, only `server.N` identifies a server);
//!
//! and every peer call is refused (`PermissionDenied`) unless the caller's certificate
//! names some server, and:
//!
//! - a `Vote` names its candidate, an `AppendEntries` or `InstallSnapshot` its leader;
//! - a membership change adding server N comes from N itself (an observer joining), or
//!   from a current voter (forwarding an operator's reconfig) while N is not a member
//!   yet: nobody else can move an existing server to a new address;
//! - removing a server comes from a current member (forwarding a reconfig).

use std::collections::BTreeSet;

use tonic::Status;

use crate::pipeline::Pipeline;
use crate::raft::rpc::{MembershipChange, PeerRequest};
use crate::raft::NodeId;

/// The prefix of a name that designates a server by id: `server.3`.
pub const ID_PREFIX: &str = "server.";

/// The host part of a `host:port` address (brackets of an IPv6 literal removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The server ids that the certificate names `names` designates, given the
/// membership's `(id, peer address)` pairs.
pub fn named_ids(names: &[String], members: &[(NodeId, &str)]) -> BTreeSet<NodeId> {
    let mut ids: BTreeSet<NodeId> = names
        .iter()
        .filter_map(|n| n.strip_prefix(ID_PREFIX)?.parse().ok())
        .collect();
    for &(id, addr) in members {
        let host = host_of(addr);
        let shared = members
            .iter()
            .any(|&(other, a)| other != id && host_of(a).eq_ignore_ascii_case(host));
        if !shared && names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            ids.insert(id);
        }
    }
    ids
}

/// The server a request speaks for, if it claims one.
fn claimed(req: &PeerRequest) -> Option<NodeId> {
    match req {
        PeerRequest::Vote(v) => v.vote.leader_id().voted_for(),
        PeerRequest::AppendEntries(a) => a.vote.leader_id().voted_for(),
        PeerRequest::InstallSnapshot(s) => s.vote.leader_id().voted_for(),
        _ => None,
    }
}

/// Checks that the caller, whose verified certificate carries `names` (None: no
/// certificate), may send `req`.
pub fn authorize(p: &Pipeline, names: Option<&[String]>, req: &PeerRequest) -> Result<(), Status> {
    let m = p.raft.metrics();
    let m = m.borrow();
    let membership = m.membership_config.membership();
    let members: Vec<(NodeId, &str)> = membership
        .nodes()
        .map(|(id, member)| (*id, member.peer_addr.as_str()))
        .collect();
    let ids = named_ids(names.unwrap_or_default(), &members);
    let refuse = |why: String| {
        tracing::warn!(
            certificate_names = ?names,
            servers = ?ids,
            "peer call refused: {why}"
        );
        Err(Status::permission_denied(why))
    };
    if ids.is_empty() {
        return refuse(format!(
            "the peer certificate names no server (expected `{ID_PREFIX}<id>` as CN or SAN, \
             or a member's peer host)"
        ));
    }
    if let Some(id) = claimed(req) {
        if !ids.contains(&id) {
            return refuse(format!(
                "a call as server {id} with a certificate of server(s) {ids:?}"
            ));
        }
    }
    if let PeerRequest::Membership(change) = req {
        let is_member = |id: &NodeId| membership.get_node(id).is_some();
        let ok = match change {
            MembershipChange::AddVoter { id, .. } | MembershipChange::AddObserver { id, .. } => {
                ids.contains(id)
                    || (!is_member(id) && membership.voter_ids().any(|v| ids.contains(&v)))
            }
            MembershipChange::Remove { .. } => ids.iter().any(is_member),
        };
        if !ok {
            return refuse(format!(
                "membership change {change:?} from server(s) {ids:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_names_and_unique_hosts() {
        let members: [(NodeId, &str); 4] = [
            (1, "zk1.example:2888"),
            (2, "zk2.example:2888"),
            (3, "10.0.0.3:2888"),
            (4, "10.0.0.3:2889"),
        ];
        let ids = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            named_ids(&names, &members).into_iter().collect::<Vec<_>>()
        };
        assert_eq!(ids(&["server.7"]), vec![7]);
        assert_eq!(ids(&["ZK2.example"]), vec![2]);
        assert_eq!(
            ids(&["10.0.0.3"]),
            Vec::<u64>::new(),
            "a shared host names nobody"
        );
        assert_eq!(ids(&["server.x", "server.", "other"]), Vec::<u64>::new());
        assert_eq!(ids(&["server.3", "zk1.example"]), vec![1, 3]);
        assert_eq!(host_of("[::1]:2888"), "::1");
    }
}
