//! Writes forwarded from a follower (or observer) to the leader, on one ordered gRPC
//! stream per follower (`Peer.Forward`).
//!
//! Follower side ([`Forwarder`]): the proposer hands over batches; a task writes them
//! on the stream, several in flight at once, and matches the leader's answers to them
//! in order (the stream keeps order; the leader answers in the order received). A
//! write completes only once this node has applied it: the session reads its own
//! write and gets its watch events first.
//!
//! Leader side ([`serve`]): every batch read from the stream is stamped with the
//! leader's clock and queued, command by command, on the leader's own proposer at once,
//! in stream order, so forwarded writes share raft entries (and fsyncs) with local
//! writes and with other followers'; one session's writes keep their order because a
//! session talks to one follower, whose stream is read in order.
//!
//! Failures: if the stream breaks or the leader does not answer in time, every batch in
//! flight on it (and every batch queued behind them) fails with `ConnectionLoss` (the
//! outcome is unknown, as with any lost connection) and the next batch opens a new
//! stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use zk_proto::peer::PeerMessage;
use zk_proto::Code;

use super::submit::{self, fail_all, wait_applied, Failure, Reply, APPLY_WAIT, FORWARD_TIMEOUT};
use super::{prep, Pipeline};
use crate::raft::network::Peers;
use crate::raft::rpc::{ForwardBatch, ForwardOutcome};
use crate::state::Shared;
use crate::tree::Command;

/// A batch handed to the stream task: the writes, where their outcomes go, and the
/// proposer's in-flight slot (released when the leader answers).
type Outgoing = (Vec<Command>, Vec<Reply>, OwnedSemaphorePermit);

/// A follower's forward stream to one leader (the task behind it ends when this is
/// dropped and everything in flight is answered, or when the stream breaks).
pub struct Forwarder {
    addr: String,
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl Forwarder {
    /// Starts a stream task towards the leader at `addr` (the stream opens lazily, with
    /// the first batch).
    pub fn start(peers: Peers, addr: String, shared: Arc<Shared>) -> Forwarder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(peers, addr.clone(), shared, rx));
        Forwarder { addr, tx }
    }

    /// Whether this stream goes to the leader at `addr`.
    pub fn leads_to(&self, addr: &str) -> bool {
        self.addr == addr
    }

    /// Sends a batch on this stream, or on a new one if this one broke; returns the
    /// forwarder to use next.
    pub fn send(
        self,
        cmds: Vec<Command>,
        replies: Vec<Reply>,
        permit: OwnedSemaphorePermit,
        peers: &Peers,
        shared: &Arc<Shared>,
    ) -> Option<Forwarder> {
        match self.tx.send((cmds, replies, permit)) {
            Ok(()) => Some(self),
            Err(mpsc::error::SendError(batch)) => {
                let fresh = Forwarder::start(peers.clone(), self.addr, shared.clone());
                match fresh.tx.send(batch) {
                    Ok(()) => Some(fresh),
                    Err(mpsc::error::SendError((_, replies, _))) => {
                        fail_all(
                            replies,
                            (Code::ConnectionLoss, "server is shutting down".into()),
                        );
                        None
                    }
                }
            }
        }
    }
}

/// Fails everything in flight and everything still queued for the stream.
fn fail_stream(
    pending: &mut Pending,
    rx: &mut mpsc::UnboundedReceiver<Outgoing>,
    failure: Failure,
) {
    rx.close();
    for (replies, _, _, _) in pending.drain(..) {
        fail_all(replies, failure.clone());
    }
    while let Ok((_, replies, _)) = rx.try_recv() {
        fail_all(replies, failure.clone());
    }
}

/// Completes one batch from the leader's answer, once this node has applied it.
fn complete(replies: Vec<Reply>, outcome: ForwardOutcome, shared: &Arc<Shared>, sent_us: u64) {
    if outcome.len() != replies.len() {
        tracing::error!(
            expected = replies.len(),
            got = outcome.len(),
            "wrong number of results for a forwarded batch"
        );
        fail_all(
            replies,
            (Code::SystemError, "internal error: lost result".into()),
        );
        return;
    }
    let last = outcome
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(zxid, _)| *zxid))
        .max();
    let index = last.map_or(0, crate::tree::index_of);
    crate::mark!("fwd_answer", index, sent_us = sent_us);
    let shared = shared.clone();
    tokio::spawn(async move {
        let applied = match last {
            Some(zxid) => wait_applied(&shared, zxid, APPLY_WAIT).await,
            None => Ok(()),
        };
        crate::mark!("fwd_done", index, sent_us = sent_us);
        for (reply, result) in replies.into_iter().zip(outcome) {
            let result = match (&applied, result) {
                (Err(f), _) => Err(f.clone()),
                (Ok(()), Ok(done)) => Ok(done),
                (Ok(()), Err((code, msg))) => Err((Code::from_i32(code), msg)),
            };
            let _ = reply.send(result);
        }
    });
}

/// Batches in flight: outcomes, slot, answer deadline, and when sent (µs, for marks).
type Pending = VecDeque<(Vec<Reply>, OwnedSemaphorePermit, Instant, u64)>;

/// Writes one batch on the stream and records it as waiting for an answer.
fn push(
    batch: Outgoing,
    out_tx: &Option<mpsc::UnboundedSender<PeerMessage>>,
    pending: &mut Pending,
) {
    let (cmds, replies, permit) = batch;
    let closed = || (Code::ConnectionLoss, "forward stream closed".to_string());
    match (postcard::to_allocvec(&cmds), out_tx) {
        (Ok(bytes), Some(tx)) => {
            let msg = PeerMessage {
                payload: bytes.into(),
            };
            match tx.send(msg) {
                Ok(()) => {
                    crate::mark!("fwd_send", 0, n = replies.len());
                    let sent_us = crate::timeline::now_us();
                    pending.push_back((replies, permit, Instant::now() + FORWARD_TIMEOUT, sent_us))
                }
                Err(_) => fail_all(replies, closed()),
            }
        }
        (Ok(_), None) => fail_all(replies, closed()),
        (Err(e), _) => fail_all(
            replies,
            (
                Code::SystemError,
                format!("cannot encode forwarded writes: {e}"),
            ),
        ),
    }
}

/// The follower's stream task towards the leader at `addr`.
async fn run(
    peers: Peers,
    addr: String,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut pending = Pending::new();
    // Open the stream with the first batch.
    let Some(first) = rx.recv().await else {
        return;
    };
    let (out_tx, out_rx) = mpsc::unbounded_channel::<PeerMessage>();
    let mut out_tx = Some(out_tx);
    push(first, &out_tx, &mut pending);
    let mut inbound = match peers
        .open_forward(&addr, UnboundedReceiverStream::new(out_rx), FORWARD_TIMEOUT)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            fail_stream(
                &mut pending,
                &mut rx,
                (
                    Code::ConnectionLoss,
                    format!("forwarding to the leader failed: {e}"),
                ),
            );
            return;
        }
    };
    loop {
        let deadline = pending.front().map(|(_, _, d, _)| *d);
        tokio::select! {
            batch = rx.recv(), if out_tx.is_some() => match batch {
                Some(batch) => push(batch, &out_tx, &mut pending),
                // The proposer moved on (a new leader): finish what is in flight.
                None => out_tx = None,
            },
            answer = inbound.message() => {
                let failure = match answer {
                    Ok(Some(msg)) => match (
                        pending.pop_front(),
                        postcard::from_bytes::<ForwardOutcome>(&msg.payload),
                    ) {
                        (Some((replies, permit, _, sent_us)), Ok(outcome)) => {
                            drop(permit);
                            complete(replies, outcome, &shared, sent_us);
                            None
                        }
                        (Some((replies, _, _, _)), Err(e)) => {
                            fail_all(replies, (Code::SystemError, format!("bad forward answer: {e}")));
                            Some(format!("bad forward answer from {addr}: {e}"))
                        }
                        (None, _) => Some(format!("unexpected forward answer from {addr}")),
                    },
                    Ok(None) => Some(format!("the leader {addr} closed the forward stream")),
                    Err(status) => Some(format!("forward stream to {addr} broke: {status}")),
                };
                if let Some(msg) = failure {
                    fail_stream(&mut pending, &mut rx, (Code::ConnectionLoss, msg));
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                fail_stream(
                    &mut pending,
                    &mut rx,
                    (
                        Code::ConnectionLoss,
                        format!("the leader {addr} did not answer forwarded writes in time"),
                    ),
                );
                return;
            }
        }
        if out_tx.is_none() && pending.is_empty() {
            return;
        }
    }
}

/// The leader's answer stream to a follower's forward stream.
pub type AnswerStream = Pin<Box<dyn Stream<Item = Result<PeerMessage, tonic::Status>> + Send>>;

/// Serves one follower's forward stream on this (leader) node: queues each batch on
/// the proposer as it arrives and answers batches in order. Ends when the follower
/// closes the stream or `stop` turns true (so a stopping node does not wait on it).
pub fn serve(
    p: Arc<Pipeline>,
    mut inbound: tonic::Streaming<PeerMessage>,
    mut stop: watch::Receiver<bool>,
) -> AnswerStream {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut answers = FuturesOrdered::new();
        let mut reading = true;
        loop {
            tokio::select! {
                msg = inbound.message(), if reading => match msg {
                    Ok(Some(msg)) => {
                        crate::mark!("fwd_recv", 0);
                        answers.push_back(queue(&p, &msg.payload))
                    }
                    Ok(None) | Err(_) => reading = false,
                },
                Some(outcome) = answers.next() => {
                    // (The index is computed only while marks are on.)
                    crate::mark!(
                        "fwd_reply",
                        outcome
                            .iter()
                            .filter_map(|r| r.as_ref().ok().map(|(z, _)| *z))
                            .max()
                            .map_or(0, crate::tree::index_of)
                    );
                    let payload = match postcard::to_allocvec::<ForwardOutcome>(&outcome) {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            let _ = tx.send(Err(tonic::Status::internal(format!("cannot encode answer: {e}"))));
                            return;
                        }
                    };
                    if tx.send(Ok(PeerMessage { payload: payload.into() })).is_err() {
                        return;
                    }
                }
                _ = stop.wait_for(|s| *s) => return,
            }
            if !reading && answers.is_empty() {
                return;
            }
        }
    });
    Box::pin(UnboundedReceiverStream::new(rx))
}

/// Queues one forwarded batch on this node's proposer (now, in stream order) and
/// returns its answer.
fn queue(p: &Pipeline, payload: &[u8]) -> futures::future::BoxFuture<'static, ForwardOutcome> {
    let fail = |n: usize, code: Code, msg: String| -> ForwardOutcome {
        (0..n).map(|_| Err((code.as_i32(), msg.clone()))).collect()
    };
    let mut cmds: ForwardBatch = match postcard::from_bytes(payload) {
        Ok(c) => c,
        Err(e) => {
            // The follower cannot match an answer of the wrong length: it fails the batch.
            let answer = fail(0, Code::SystemError, format!("bad forwarded batch: {e}"));
            return Box::pin(futures::future::ready(answer));
        }
    };
    let leading = p.raft.metrics().borrow().current_leader == Some(p.node_id());
    if !leading {
        let answer = fail(
            cmds.len(),
            Code::ConnectionLoss,
            format!("server {} is not the leader; retry", p.node_id()),
        );
        return Box::pin(futures::future::ready(answer));
    }
    let now = prep::now_ms();
    for cmd in &mut cmds {
        if let Command::Txn { time_ms, .. } | Command::Reap { time_ms, .. } = cmd {
            *time_ms = now;
        }
    }
    let completions: Vec<submit::Completion> = cmds
        .into_iter()
        .map(|cmd| p.proposer.submit_forwarded(cmd))
        .collect();
    Box::pin(async move {
        futures::future::join_all(completions)
            .await
            .into_iter()
            .map(|r| r.map_err(|(code, msg)| (code.as_i32(), msg)))
            .collect()
    })
}
