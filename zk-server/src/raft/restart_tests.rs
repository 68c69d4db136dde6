//! A single-node openraft cluster on [`LogStore`] + [`StateMachine`]: writes, a snapshot
//! with log purge, a restart. Checks the glue with the real raft core, in particular that
//! a restarted node re-applies its committed log before any election.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, Config};

use super::{LogStore, Member, NodeId, Raft, StateMachine, TypeConfig};
use crate::state::Shared;
use crate::storage::SyncMode;
use crate::tree::Command;

/// A network with no peers: every RPC is unreachable (a one-node cluster sends none).
struct NoPeers;

fn unreachable<E: std::error::Error>() -> RPCError<NodeId, Member, E> {
    RPCError::Unreachable(Unreachable::new(&AnyError::error("no peers in this test")))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;
    async fn new_client(&mut self, _target: NodeId, _node: &Member) -> NoPeers {
        NoPeers
    }
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        Err(unreachable())
    }
}

async fn start(dir: &Path, election_ms: u64) -> (Raft, Arc<Shared>) {
    let shared = Arc::new(Shared::new());
    let log = LogStore::open(&dir.join("log"), SyncMode::Always)
        .await
        .unwrap();
    let sm = StateMachine::open(&dir.join("snapshots"), shared.clone()).unwrap();
    let config = Config {
        heartbeat_interval: election_ms / 3,
        election_timeout_min: election_ms,
        election_timeout_max: election_ms * 2,
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Default::default()
    };
    let raft = Raft::new(1, Arc::new(config.validate().unwrap()), NoPeers, log, sm)
        .await
        .unwrap();
    (raft, shared)
}

async fn write(raft: &Raft, session: i64) -> u64 {
    raft.client_write(crate::tree::Batch(vec![Command::CloseSession { session }]))
        .await
        .unwrap()
        .log_id
        .index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reapplies_committed_log_after_snapshot_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let wait = Some(Duration::from_secs(10));

    let (raft, shared) = start(dir.path(), 150).await;
    raft.initialize(BTreeMap::from([(1, Member::default())]))
        .await
        .unwrap();
    raft.wait(wait).current_leader(1, "leader").await.unwrap();
    let mut last = 0;
    for s in 0..3 {
        last = write(&raft, s).await;
    }
    raft.trigger().snapshot().await.unwrap();
    raft.wait(wait)
        .metrics(|m| m.snapshot.map(|l| l.index) == Some(last), "snapshot")
        .await
        .unwrap();
    // The `purged` metric moves when openraft issues the purge; wait for the store to
    // have done it.
    let purged_file = dir.path().join("log").join("purged.meta");
    for _ in 0..1000 {
        if purged_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(purged_file.exists(), "the log was never purged");
    let snap_index = last;
    for s in 3..6 {
        last = write(&raft, s).await;
    }
    assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(last));
    raft.shutdown().await.unwrap();
    drop(raft);

    // Long election timeout: whatever is applied right after `Raft::new` came from the
    // snapshot plus the local committed log, not from a new term.
    let (raft, shared) = start(dir.path(), 5_000).await;
    assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(last));
    // Metrics are published by the core task a moment after `Raft::new`.
    raft.wait(wait)
        .metrics(
            |m| {
                m.snapshot.map(|l| l.index) == Some(snap_index)
                    && m.purged.map(|l| l.index) == Some(snap_index)
                    && m.last_log_index == Some(last)
                    && m.last_applied.map(|l| l.index) == Some(last)
            },
            "restored snapshot, purge point, log and applied index",
        )
        .await
        .unwrap();

    // And it carries on as leader once elected.
    raft.wait(wait)
        .current_leader(1, "leader again")
        .await
        .unwrap();
    let next = write(&raft, 99).await;
    assert!(next > last);
    assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(next));
    raft.shutdown().await.unwrap();
}
