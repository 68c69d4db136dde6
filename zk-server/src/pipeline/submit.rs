//! Hands writes to raft, batched. Every connection queues its session's writes on the
//! node's [`Proposer`] in order; the proposer packs everything queued into one raft
//! entry (a [`Batch`]) and keeps at most [`MAX_ENTRIES_IN_FLIGHT`] entries in flight.
//! On the leader it cuts the next batch only once the entry it proposed last is durable
//! in the local log (or done): openraft's core is busy with that entry's fsync until
//! then, so a batch cut earlier would only wait in openraft's queue while the writes
//! that arrive meanwhile wait for yet another entry and fsync. Cutting at the flush puts
//! everything that arrived during one fsync into the next (Apache ZooKeeper's
//! SyncRequestProcessor does the same).
//! On a follower or observer the batch is forwarded to the leader instead (one forward
//! at a time, so order holds), and each write completes only once this node has
//! applied it: a session always reads its own writes, and their watch events are
//! queued here before the reply.
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

use crate::raft::log_store::FlushProgress;
use crate::raft::network::Peers;
use crate::raft::rpc::{PeerReply, PeerRequest};
use crate::raft::{Member, NodeId, Raft};
use crate::state::Shared;
use crate::tree::txn::MAX_BATCH;
use crate::tree::{zxid_end, zxid_of, ApplyResult, Batch, Command, TxnOp};

/// How long a forwarded batch may take on the leader.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write waits for a leader to appear (an election) before failing.
const LEADER_WAIT: Duration = Duration::from_secs(3);
/// How long a follower waits to apply a write the leader committed.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// Why a write or sync did not complete: a code for the client and a message.
pub type Failure = (Code, String);

/// Resolves to (zxid, apply result) once the write is applied on this node.
pub type Completion = BoxFuture<'static, Result<(i64, ApplyResult), Failure>>;

/// Raft entries proposed and not yet applied, at most: while they are in flight, new
/// writes accumulate into the next batch.
pub const MAX_ENTRIES_IN_FLIGHT: usize = 2;

/// Value bytes one entry may carry before the batch is cut.
const MAX_BATCH_BYTES: usize = 8 << 20;

type Reply = oneshot::Sender<Result<(i64, ApplyResult), Failure>>;

/// The node's write queue into raft (cheap to clone).
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<(Command, Reply)>,
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
        let (reply, rx) = oneshot::channel();
        if self.tx.send((cmd, reply)).is_err() {
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

fn fail_all(replies: Vec<Reply>, failure: Failure) {
    for reply in replies {
        let _ = reply.send(Err(failure.clone()));
    }
}

fn complete(replies: Vec<Reply>, index: u64, results: Vec<ApplyResult>) {
    if results.len() != replies.len() {
        tracing::error!(
            index,
            expected = replies.len(),
            got = results.len(),
            "wrong number of results for a batch"
        );
        fail_all(
            replies,
            (Code::SystemError, "internal error: lost result".into()),
        );
        return;
    }
    for (i, (reply, result)) in replies.into_iter().zip(results).enumerate() {
        let _ = reply.send(Ok((zxid_of(index, i), result)));
    }
}

/// Forwards a batch to the leader; completes once applied here. Runs inline, so the
/// next batch leaves only after this one is committed: one session's writes keep
/// their order across forwards.
async fn forward(ctx: &Ctx, leader: &Member, cmds: Vec<Command>, replies: Vec<Reply>) {
    let reply = ctx
        .peers
        .call(
            &leader.peer_addr,
            &PeerRequest::Forward(cmds),
            FORWARD_TIMEOUT,
        )
        .await;
    match reply {
        Ok(PeerReply::Forward(Ok((index, results)))) => {
            let shared = ctx.shared.clone();
            tokio::spawn(async move {
                match wait_applied(&shared, zxid_end(index), APPLY_WAIT).await {
                    Ok(()) => complete(replies, index, results),
                    Err(f) => fail_all(replies, f),
                }
            });
        }
        Ok(PeerReply::Forward(Err((code, msg)))) => fail_all(replies, (Code::from_i32(code), msg)),
        Ok(other) => fail_all(
            replies,
            (
                Code::SystemError,
                format!("unexpected peer reply {other:?}"),
            ),
        ),
        Err(e) => fail_all(
            replies,
            (
                Code::ConnectionLoss,
                format!("forwarding to the leader failed: {e}"),
            ),
        ),
    }
}

async fn propose(ctx: Ctx, mut rx: mpsc::UnboundedReceiver<(Command, Reply)>) {
    let raft = ctx.raft.clone();
    let in_flight = Arc::new(Semaphore::new(MAX_ENTRIES_IN_FLIGHT));
    let mut carry: Option<(Command, Reply)> = None;
    // The last entry proposed on the leader: the index it will be durable at, at the
    // latest, and a signal that fires when it is done (committed, or failed).
    let mut last: Option<(u64, oneshot::Receiver<()>)> = None;
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if let Some((index, mut settled)) = last.take() {
            tokio::select! {
                _ = ctx.progress.flushed(index) => {}
                _ = &mut settled => {}
            }
        }
        let first = match carry.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let mut bytes = weight(&first.0);
        let (mut cmds, mut replies): (Vec<Command>, Vec<Reply>) = (vec![first.0], vec![first.1]);
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
                }
                Err(_) => break,
            }
        }
        let n = cmds.len();
        match leader(&raft).await {
            Some((id, _)) if id == ctx.id => {}
            Some((_, member)) => {
                forward(&ctx, &member, cmds, replies).await;
                drop(permit);
                continue;
            }
            None => {
                fail_all(
                    replies,
                    (
                        Code::ConnectionLoss,
                        "no leader: the ensemble has no quorum".into(),
                    ),
                );
                drop(permit);
                continue;
            }
        }
        // The entry gets an index above everything appended so far.
        let index = ctx.progress.appended() + 1;
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
