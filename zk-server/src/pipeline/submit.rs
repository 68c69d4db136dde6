//! Hands writes to raft. `submit` only enqueues (openraft's fire-and-forget write), so
//! a connection submits its session's writes in order and many stay in flight; the
//! returned completion resolves when the entry is committed and applied locally.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use zk_proto::Code;

use crate::raft::Raft;
use crate::tree::{ApplyResult, Command};

/// Why a write or sync did not complete: a code for the client and a message.
pub type Failure = (Code, String);

/// Resolves to (zxid, apply result) once the write is applied on this node.
pub type Completion = BoxFuture<'static, Result<(i64, ApplyResult), Failure>>;

/// Enqueues `cmd` into raft (in call order) and returns its completion.
pub async fn submit(raft: &Raft, cmd: Command) -> Completion {
    match raft.client_write_ff(cmd).await {
        Ok(rx) => async move {
            match rx.await {
                Ok(Ok(resp)) => Ok((resp.log_id.index as i64, resp.data)),
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err((
                    Code::ConnectionLoss,
                    format!(
                        "this server is not the leader (leader: {:?}); retry",
                        f.leader_id
                    ),
                )),
                Ok(Err(e)) => Err((Code::SystemError, format!("write failed: {e}"))),
                Err(_) => Err((Code::ConnectionLoss, "server is shutting down".to_string())),
            }
        }
        .boxed(),
        Err(e) => futures::future::ready(Err((Code::ConnectionLoss, format!("raft stopped: {e}"))))
            .boxed(),
    }
}

/// Submits and waits: for session creation/close outside the ordered request flow.
pub async fn write(raft: &Raft, cmd: Command) -> Result<(i64, ApplyResult), Failure> {
    submit(raft, cmd).await.await
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
