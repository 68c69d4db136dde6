//! Configurations for a local ensemble (several nodes on one machine): used by
//! `zk-server dev-cluster` and by [`crate::testing::TestCluster`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;

/// The addresses one node of a local ensemble uses.
#[derive(Debug, Clone)]
pub struct NodePorts {
    pub client: String,
    pub peer: String,
    pub admin: String,
}

/// Configs for `voters` voting members (ids 1..=voters) and `observers` observers (the
/// ids after them), each with its own ports (from `ports(id)`) and `data_dir/node-<id>`,
/// based on `template` (sync policy, ticks, timeouts...).
pub fn local_ensemble(
    template: &Config,
    voters: u64,
    observers: u64,
    data_dir: &Path,
    ports: impl Fn(u64) -> NodePorts,
) -> Vec<Config> {
    let all: Vec<(u64, NodePorts)> = (1..=voters + observers).map(|id| (id, ports(id))).collect();
    let peers: BTreeMap<u64, String> = all
        .iter()
        .filter(|(id, _)| *id <= voters)
        .map(|(id, p)| (*id, p.peer.clone()))
        .collect();
    all.into_iter()
        .map(|(id, p)| Config {
            node_id: id,
            peers: peers.clone(),
            peer_addr: Some(p.peer),
            observer: id > voters,
            data_dir: data_dir.join(format!("node-{id}")),
            client_addr: p.client,
            admin_addr: p.admin,
            ..template.clone()
        })
        .collect()
}

/// The client connect string of a set of configs: `host:port,host:port,...`.
pub fn connect_string(configs: &[Config]) -> String {
    configs
        .iter()
        .map(|c| c.client_addr.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
