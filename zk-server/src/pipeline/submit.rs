//! Hands writes to raft, batched. Every connection queues its session's writes on the
//! node's [`Proposer`] in order; the proposer packs everything queued into one raft
//! entry (a [`Batch`]) and keeps at most [`MAX_ENTRIES_IN_FLIGHT`] entries in flight.
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

use crate::raft::Raft;
use crate::tree::txn::MAX_BATCH;
use crate::tree::{zxid_of, ApplyResult, Batch, Command, TxnOp};

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

impl Proposer {
    /// Starts the proposing task for `raft`; it ends when every `Proposer` is dropped.
    pub fn start(raft: Raft) -> Proposer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(propose(raft, rx));
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
                TxnOp::Create { data, .. } | TxnOp::SetData { data, .. } => data.len() + 64,
                _ => 64,
            })
            .sum(),
        _ => 64,
    }
}

async fn propose(raft: Raft, mut rx: mpsc::UnboundedReceiver<(Command, Reply)>) {
    let in_flight = Arc::new(Semaphore::new(MAX_ENTRIES_IN_FLIGHT));
    let mut carry: Option<(Command, Reply)> = None;
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
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
        match raft.client_write_ff(Batch(cmds)).await {
            Ok(done) => {
                tokio::spawn(async move {
                    let outcome = match done.await {
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

/// Waits until this node has applied every write committed before the call (raft
/// read-index: confirms leadership with a quorum, then waits for apply).
pub async fn sync(raft: &Raft) -> Result<(), Failure> {
    let mut delay = Duration::from_millis(20);
    for _ in 0..8 {
        match raft.ensure_linearizable().await {
            Ok(_) => return Ok(()),
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
