//! Tells followers and observers the leader's commit index as soon as it advances.
//!
//! Why: a follower answers a write it forwarded only once it has applied it, and
//! openraft 0.9 lets a follower apply only up to the commit index it learned from the
//! leader's append-entries. The leader's replication to a follower keeps one RPC in
//! flight, so the new commit index waits behind the entries in flight (whose RPC lasts
//! the follower's fsync), and arrives with the next entries, which the follower appends
//! and fsyncs before it looks at the commit index: the forwarded write's reply waited
//! for two more fsyncs than needed.
//!
//! How: whenever the leader applies an entry (so it is committed), a task per member
//! sends that member an append-entries with no entries, no previous log id and the
//! applied log id as the leader's commit, on its own gRPC stream beside openraft's
//! replication (one push in flight per member; newer commits replace older ones while
//! it is in flight). This is exactly the commit part of a raft heartbeat: the member
//! commits `min(its log accepted from this leader, commit)`, so it never commits what
//! it does not have; a push from a deposed leader carries an older vote and is
//! refused; with no entries and no previous log id nothing is appended or truncated.
//! Answers are ignored (openraft's own replication handles everything else).
//!
//! Status: experimental and OFF unless the environment sets `ZK_COMMIT_PUSH=1`. It
//! takes ~0.3-0.4 ms off a forwarded write's wait for its local apply (per-stage marks,
//! `bench/timeline.py`), but on the 2-core benchmark machine the extra RPC per entry
//! per member cost more CPU than that saved: 3-node `set`, 16 clients, inflight 1 went
//! from ~2,790 to ~2,450 ops/s (docs/benchmarks.md).

use std::collections::HashMap;
use std::time::Duration;

use openraft::raft::AppendEntriesRequest;
use openraft::{LogId, ServerState};
use tokio::sync::watch;

use super::network::Peers;
use super::rpc::PeerRequest;
use super::{NodeId, Raft, TypeConfig};

/// How long one push may take before it is abandoned (the next commit is pushed anew).
const PUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// The log id of the last entry applied on this node (set by the state machine).
pub type AppliedLogId = watch::Receiver<Option<LogId<NodeId>>>;

/// One push: the leader's vote and commit, and where the member listens.
type Push = (AppendEntriesRequest<TypeConfig>, String);

/// Whether commit pushing is switched on (`ZK_COMMIT_PUSH=1` in the environment).
pub fn enabled() -> bool {
    std::env::var_os("ZK_COMMIT_PUSH").is_some_and(|v| v == "1")
}

/// Pushes the commit index to every other member while this node leads; ends when
/// `applied` closes (the state machine is gone) or `stop` turns true.
pub async fn run(
    raft: Raft,
    id: NodeId,
    peers: Peers,
    mut applied: AppliedLogId,
    mut stop: watch::Receiver<bool>,
) {
    let mut members: HashMap<NodeId, watch::Sender<Option<Push>>> = HashMap::new();
    loop {
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(commit) = *applied.borrow_and_update() else {
            continue;
        };
        let metrics = raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader || !metrics.vote.is_committed() {
            continue;
        }
        let membership = metrics.membership_config.membership().clone();
        for (target, member) in membership.nodes() {
            if *target == id {
                continue;
            }
            let push = AppendEntriesRequest {
                vote: metrics.vote,
                prev_log_id: None,
                entries: Vec::new(),
                leader_commit: Some(commit),
            };
            let tx = members.entry(*target).or_insert_with(|| {
                let (tx, rx) = watch::channel(None);
                tokio::spawn(push_to(peers.clone(), rx));
                tx
            });
            tx.send_replace(Some((push, member.peer_addr.clone())));
        }
    }
}

/// Sends the newest push to one member, one at a time, until the sender is dropped.
async fn push_to(peers: Peers, mut rx: watch::Receiver<Option<Push>>) {
    while rx.changed().await.is_ok() {
        let Some((rpc, addr)) = rx.borrow_and_update().clone() else {
            continue;
        };
        let commit = rpc.leader_commit.map_or(0, |l| l.index);
        crate::mark!("commit_push", commit);
        if let Err(e) = peers
            .call(&addr, &PeerRequest::AppendEntries(rpc), PUSH_TIMEOUT)
            .await
        {
            tracing::debug!(%addr, "commit push failed: {e}");
        }
    }
}
