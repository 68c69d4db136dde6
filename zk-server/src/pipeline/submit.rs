//! Hands writes to raft, batched. Every connection queues its session's writes on the
//! node's [`Proposer`] in order; the proposer packs everything queued into one raft
//! entry (a [`Batch`]) and keeps at most [`MAX_ENTRIES_IN_FLIGHT`] entries in flight.
//! On the leader it cuts the next batch only once the entry it proposed last is durable
//! in the local log (or done): openraft's core is busy with that entry's fsync until
//! then, so a batch cut earlier would only wait in openraft's queue while the writes
//! that arrive meanwhile wait for yet another entry and fsync. Cutting at the flush puts
//! everything that arrived during one fsync into the next (Apache ZooKeeper's
//! SyncRequestProcessor does the same).
//! On a follower or observer the batch is forwarded to the leader instead, on one
//! ordered stream ([`super::forward`]) with up to [`MAX_FORWARDS_IN_FLIGHT`] batches in
//! flight; the leader queues forwarded writes on its own proposer in stream order, so
//! they share entries and fsyncs with everyone else's. Each forwarded write completes
//! only once this node has applied it: a session always reads its own writes, and
//! their watch events are queued here before the reply.
//! openraft 0.9 fsyncs the leader's log once per entry and waits for it, so this
//! batching is what makes concurrent writes share an fsync (group commit). Queue order
//! is log order, so one session's writes apply in the order sent.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};
use zk_proto::Code;

use super::forward::Forwarder;
use crate::raft::log_store::FlushProgress;
use crate::raft::network::Peers;
use crate::raft::rpc::{PeerReply, PeerRequest};
use crate::raft::{Member, NodeId, Raft};
use crate::state::Shared;
use crate::tree::txn::MAX_BATCH;
use crate::tree::{zxid_end, zxid_of, ApplyResult, Batch, Command, TxnOp};

/// How long a forwarded batch (or a read index) may take on the leader.
pub(super) const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write waits for a leader to appear (an election) before failing.
const LEADER_WAIT: Duration = Duration::from_secs(3);
/// How long a follower waits to apply a write the leader committed.
pub(super) const APPLY_WAIT: Duration = Duration::from_secs(10);

/// Why a write or sync did not complete: a code for the client and a message.
pub type Failure = (Code, String);

/// Resolves to (zxid, apply result) once the write is applied on this node.
pub type Completion = BoxFuture<'static, Result<(i64, ApplyResult), Failure>>;

/// Raft entries proposed and not yet applied, at most: while they are in flight, new
/// writes accumulate into the next batch.
pub const MAX_ENTRIES_IN_FLIGHT: usize = 2;

/// Batches a follower or observer has forwarded to the leader and not yet had answered,
/// at most: while they are in flight, new writes accumulate into the next batch.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 4;

/// Value bytes one entry may carry before the batch is cut.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Where a write's outcome goes.
pub(super) type Reply = oneshot::Sender<Result<(i64, ApplyResult), Failure>>;

/// A queued write: the command, where its outcome goes, and whether a follower
/// forwarded it here (such a write is never forwarded again: if this node no longer
/// leads, it fails and the follower's client retries).
/// The last field is when it was queued (µs, only while timeline marks are on).
type Queued = (Command, Reply, bool, u64);

/// The node's write queue into raft (cheap to clone).
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Queued>,
}

/// What the proposing task needs.
struct Ctx {
    raft: Raft,
    id: NodeId,
    peers: Peers,
    shared: Arc<Shared>,
    progress: FlushProgress,
}

impl Proposer {
    /// Starts the proposing task of node `id`; it ends when every `Proposer` is dropped.
    /// `progress` is the node's log flush progress (from its `LogStore`).
    pub fn start(
        raft: Raft,
        id: NodeId,
        peers: Peers,
        shared: Arc<Shared>,
        progress: FlushProgress,
    ) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(propose(
            Ctx {
                raft,
                id,
                peers,
                shared,
                progress,
            },
            rx,
        ));
        Proposer { tx }
    }

    /// Queues `cmd` (in call order) and returns its completion.
    pub fn submit(&self, cmd: Command) -> Completion {
        self.queue(cmd, false)
    }

    /// Queues a write a follower forwarded (in stream order) and returns its completion
    /// (once applied here). Fails instead of forwarding it on if this node does not lead.
    pub fn submit_forwarded(&self, cmd: Command) -> Completion {
        self.queue(cmd, true)
    }

    fn queue(&self, cmd: Command, forwarded: bool) -> Completion {
        let (reply, rx) = oneshot::channel();
        let queued_us = match crate::timeline::enabled() {
            true => crate::timeline::now_us(),
            false => 0,
        };
        if self.tx.send((cmd, reply, forwarded, queued_us)).is_err() {
            return futures::future::ready(Err((
                Code::ConnectionLoss,
                "server is shutting down".into(),
            )))
            .boxed();
        }
        async move {
            rx.await
                .unwrap_or_else(|_| Err((Code::ConnectionLoss, "server is shutting down".into())))
        }
        .boxed()
    }

    /// Submits and waits: for session creation/close outside the ordered request flow.
    pub async fn write(&self, cmd: Command) -> Result<(i64, ApplyResult), Failure> {
        self.submit(cmd).await
    }
}

fn weight(cmd: &Command) -> usize {
    match cmd {
        Command::Txn { ops, .. } => ops
            .iter()
            .map(|op| match op {
                TxnOp::Create { data, acl, .. } => data.len() + 64 + acl.len() * 32,
                TxnOp::SetData { data, .. } => data.len() + 64,
                TxnOp::SetAcl { acl, .. } => 64 + acl.len() * 32,
                _ => 64,
            })
            .sum(),
        _ => 64,
    }
}

/// The current leader and its address, waiting up to `LEADER_WAIT` (3 s) for one.
pub async fn leader(raft: &Raft) -> Option<(NodeId, Member)> {
    let mut metrics = raft.metrics();
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        {
            let m = metrics.borrow_and_update();
            if let Some(id) = m.current_leader {
                if let Some(node) = m.membership_config.membership().get_node(&id) {
                    return Some((id, node.clone()));
                }
            }
        }
        if tokio::time::timeout_at(deadline, metrics.changed())
            .await
            .map_or(true, |r| r.is_err())
        {
            return None;
        }
    }
}

/// Waits until this node has applied `zxid`.
pub async fn wait_applied(shared: &Shared, zxid: i64, within: Duration) -> Result<(), Failure> {
    let mut rx = shared.applied.subscribe();
    let reached = matches!(
        tokio::time::timeout(within, rx.wait_for(|z| *z >= zxid)).await,
        Ok(Ok(_))
    );
    match reached {
        true => Ok(()),
        false => Err((
            Code::ConnectionLoss,
            format!("this server did not catch up to zxid {zxid:#x} in time"),
        )),
    }
}

pub(super) fn fail_all(replies: Vec<Reply>, failure: Failure) {
    for reply in replies {
        let _ = reply.send(Err(failure.clone()));
    }
}

async fn propose(ctx: Ctx, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let raft = ctx.raft.clone();
    let in_flight = Arc::new(Semaphore::new(MAX_ENTRIES_IN_FLIGHT));
    let forward_slots = Arc::new(Semaphore::new(MAX_FORWARDS_IN_FLIGHT));
    let mut forwarder: Option<Forwarder> = None;
    let mut carry: Option<Queued> = None;
    // The last entry proposed on the leader: the index it will be durable at, at the
    // latest, and a signal that fires when it is done (committed, or failed).
    let mut last: Option<(u64, oneshot::Receiver<()>)> = None;
    loop {
        let first = match carry.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let role = leader(&raft).await;
        let permit = match &role {
            Some((id, _)) if *id == ctx.id => {
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                if let Some((index, mut settled)) = last.take() {
                    tokio::select! {
                        _ = ctx.progress.flushed(index) => {}
                        _ = &mut settled => {}
                    }
                }
                Some(permit)
            }
            Some(_) => {
                let Ok(permit) = forward_slots.clone().acquire_owned().await else {
                    return;
                };
                Some(permit)
            }
            None => None,
        };
        let mut bytes = weight(&first.0);
        let oldest_us = first.3;
        let (mut cmds, mut replies, mut forwarded) = (vec![first.0], vec![first.1], vec![first.2]);
        while cmds.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => {
                    let w = weight(&item.0);
                    if bytes + w > MAX_BATCH_BYTES {
                        carry = Some(item);
                        break;
                    }
                    bytes += w;
                    cmds.push(item.0);
                    replies.push(item.1);
                    forwarded.push(item.2);
                }
                Err(_) => break,
            }
        }
        crate::mark!("cut", 0, n = cmds.len(), queued_us = oldest_us);
        let (Some(permit), Some((leader_id, member))) = (permit, role) else {
            fail_all(
                replies,
                (
                    Code::ConnectionLoss,
                    "no leader: the ensemble has no quorum".into(),
                ),
            );
            continue;
        };
        if leader_id != ctx.id {
            // Writes forwarded here are not forwarded again: they fail, in order.
            let mut keep = (Vec::new(), Vec::new());
            for ((cmd, reply), fwd) in cmds.into_iter().zip(replies).zip(forwarded) {
                if fwd {
                    let _ = reply.send(Err((
                        Code::ConnectionLoss,
                        format!("server {} no longer leads; retry", ctx.id),
                    )));
                } else {
                    keep.0.push(cmd);
                    keep.1.push(reply);
                }
            }
            if keep.0.is_empty() {
                continue;
            }
            let f = match forwarder.take() {
                Some(f) if f.leads_to(&member.peer_addr) => f,
                _ => Forwarder::start(
                    ctx.peers.clone(),
                    member.peer_addr.clone(),
                    ctx.shared.clone(),
                ),
            };
            forwarder = f.send(keep.0, keep.1, permit, &ctx.peers, &ctx.shared);
            continue;
        }
        let n = cmds.len();
        // The entry gets an index above everything appended so far.
        let index = ctx.progress.appended() + 1;
        crate::mark!("propose", index, n = n);
        match raft.client_write_ff(Batch(cmds)).await {
            Ok(done) => {
                let (settled_tx, settled) = oneshot::channel();
                last = Some((index, settled));
                tokio::spawn(async move {
                    let done = done.await;
                    let _ = settled_tx.send(());
                    let outcome = match done {
                        Ok(Ok(resp)) => Ok((resp.log_id.index, resp.data)),
                        Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err((
                            Code::ConnectionLoss,
                            format!(
                                "this server is not the leader (leader: {:?}); retry",
                                f.leader_id
                            ),
                        )),
                        Ok(Err(e)) => Err((Code::SystemError, format!("write failed: {e}"))),
                        Err(_) => {
                            Err((Code::ConnectionLoss, "server is shutting down".to_string()))
                        }
                    };
                    drop(permit);
                    if let Ok((index, _)) = &outcome {
                        crate::mark!("leader_done", *index);
                    }
                    match outcome {
                        Ok((index, results)) if results.len() == n => {
                            for (i, (reply, result)) in replies.into_iter().zip(results).enumerate()
                            {
                                let _ = reply.send(Ok((zxid_of(index, i), result)));
                            }
                        }
                        Ok((index, results)) => {
                            tracing::error!(
                                index,
                                expected = n,
                                got = results.len(),
                                "apply returned a wrong number of results"
                            );
                            for reply in replies {
                                let _ = reply.send(Err((
                                    Code::SystemError,
                                    "internal error: lost result".into(),
                                )));
                            }
                        }
                        Err(failure) => {
                            for reply in replies {
                                let _ = reply.send(Err(failure.clone()));
                            }
                        }
                    }
                });
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err((Code::ConnectionLoss, format!("raft stopped: {e}"))));
                }
                return;
            }
        }
    }
}

/// Waits until this node has applied every write committed before the call: on the
/// leader a raft read-index (leadership confirmed by a quorum); on a follower or
/// observer the leader's read index, then local apply up to it.
pub async fn sync(raft: &Raft, id: NodeId, peers: &Peers, shared: &Shared) -> Result<(), Failure> {
    if crate::sim::injected(crate::sim::Bug::SyncWithoutReadIndex) {
        return Ok(());
    }
    match leader(raft).await {
        Some((leader_id, _)) if leader_id == id => leader_sync(raft).await,
        Some((_, member)) => {
            match peers
                .call(&member.peer_addr, &PeerRequest::ReadIndex, FORWARD_TIMEOUT)
                .await
            {
                Ok(PeerReply::ReadIndex(Ok(index))) => {
                    wait_applied(shared, zxid_end(index), APPLY_WAIT).await
                }
                Ok(PeerReply::ReadIndex(Err((code, msg)))) => Err((Code::from_i32(code), msg)),
                Ok(other) => Err((
                    Code::SystemError,
                    format!("unexpected peer reply {other:?}"),
                )),
                Err(e) => Err((
                    Code::ConnectionLoss,
                    format!("sync: the leader did not answer: {e}"),
                )),
            }
        }
        None => Err((Code::ConnectionLoss, "sync: no leader".into())),
    }
}

/// The leader's read index, once this (leader) node has applied up to it.
pub async fn leader_sync(raft: &Raft) -> Result<(), Failure> {
    leader_read_index(raft).await.map(|_| ())
}

/// The leader's read index (raft log index), once applied here; leader only.
pub async fn leader_read_index(raft: &Raft) -> Result<u64, Failure> {
    let mut delay = Duration::from_millis(20);
    for _ in 0..8 {
        match raft.ensure_linearizable().await {
            Ok(log_id) => return Ok(log_id.map_or(0, |l| l.index)),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                return Err((
                    Code::ConnectionLoss,
                    format!(
                        "this server is not the leader (leader: {:?}); retry",
                        f.leader_id
                    ),
                ))
            }
            Err(RaftError::Fatal(e)) => {
                return Err((Code::ConnectionLoss, format!("raft stopped: {e}")))
            }
        }
    }
    Err((
        Code::OperationTimeout,
        "sync: no quorum confirmed leadership".into(),
    ))
}
