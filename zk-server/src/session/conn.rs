//! One task per client connection: the handshake (new session or reattach), then the
//! ordered request loop.
//!
//! Ordering (ZooKeeper's FIFO client order), enforced here:
//! - writes (and sync, close) are submitted to raft in arrival order and may be many
//!   in flight; their replies come out of `inflight` in submission order;
//! - a read runs only when no earlier request of the session is still in flight, so it
//!   sees all of them; until then it, and everything after it, waits in `blocked`;
//! - replies and watch events share the one outbound queue.
//!
//! Back-pressure: once `--max-outstanding-requests` of the connection's requests are in
//! flight or waiting, the loop stops reading the connection until one is answered (as
//! ZooKeeper stops reading a throttled connection); the transport's own flow control
//! then holds the client. No request is refused for it, and other connections are not
//! affected.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, Stream, StreamExt};
use tonic::Status;
use zk_proto::pb::{
    self, client_message::Kind as In, server_message::Kind as OutKind, ServerMessage,
};
use zk_proto::Code;

use super::expiry::Liveness;
use super::outbound::Outbound;
use crate::pipeline::{prep, read, reply, submit, Pipeline, Prepared};
use crate::tree::acl::{self, Id};
use crate::tree::{ApplyResult, Command};

/// How long a new connection may take to send its ConnectRequest.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an in-flight request turns into.
enum Done {
    Reply(ServerMessage),
    /// The reply to closeSession: the connection ends after it.
    Closed(ServerMessage),
}

/// Serves one connection until the client leaves, closes its session, or is cut off.
/// `identities` are what the transport proved about the client (its `ip`, and its
/// `x509` subject over mutual TLS: [`acl::connection_ids`]); `addauth` adds more.
pub async fn serve<S>(p: Arc<Pipeline>, mut inbound: S, out: Outbound, identities: Vec<Id>)
where
    S: Stream<Item = Result<pb::ClientMessage, Status>> + Unpin + Send,
{
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, inbound.next()).await;
    let connect = match first {
        Ok(Some(Ok(pb::ClientMessage {
            kind: Some(In::Connect(c)),
        }))) => c,
        other => {
            tracing::debug!(?other, "connection closed before a ConnectRequest");
            out.close();
            return;
        }
    };
    let Some((session, live)) = handshake(&p, connect, &out).await else {
        out.close();
        return;
    };
    let mut conn = Conn {
        p: p.clone(),
        session,
        live,
        out: out.clone(),
        inflight: FuturesOrdered::new(),
        blocked: VecDeque::new(),
        closing: false,
        auth: identities,
    };
    p.shared.watches.set_identities(session, &out, &conn.auth);
    conn.run(&mut inbound).await;
    p.shared.watches.detach(session, &out);
    out.close();
}

/// Opens or reattaches the session; queues the ConnectResponse.
async fn handshake(
    p: &Pipeline,
    c: pb::ConnectRequest,
    out: &Outbound,
) -> Option<(i64, Arc<Liveness>)> {
    if !p.shared.is_serving() {
        tracing::debug!("refusing a connection: this server is not serving (no quorum or leader)");
        return None;
    }
    let applied = p.shared.applied_zxid();
    if c.last_zxid_seen > applied {
        tracing::info!(
            client_zxid = c.last_zxid_seen,
            applied,
            "refusing a client that has seen a newer state than this server"
        );
        return None;
    }
    let cfg = &p.config;
    let (id, password, timeout_ms, live) = if c.session_id == 0 {
        let timeout_ms = c
            .timeout_ms
            .clamp(cfg.min_session_timeout_ms(), cfg.max_session_timeout_ms());
        let password: [u8; 16] = crate::sim::random_bytes();
        match p
            .proposer
            .write(Command::CreateSession {
                timeout_ms,
                password,
            })
            .await
        {
            Ok((
                _,
                ApplyResult::SessionCreated {
                    id,
                    timeout_ms,
                    password,
                },
            )) => {
                // Apply tracked it on this node; a fresh clock if it raced with a close.
                let live = p
                    .shared
                    .tracker
                    .get(id)
                    .unwrap_or_else(|| p.shared.tracker.track(id, timeout_ms));
                tracing::debug!(session = format!("{id:#x}"), timeout_ms, "session created");
                (id, password, timeout_ms, live)
            }
            Ok((_, other)) => {
                tracing::error!(?other, "unexpected result for CreateSession");
                return None;
            }
            Err((code, msg)) => {
                tracing::info!(%code, msg, "cannot create a session");
                return None;
            }
        }
    } else {
        let info = p.shared.tree.read().session(c.session_id).cloned();
        match info {
            Some(info) if info.password.as_slice() == c.password.as_ref() => {
                let live = p
                    .shared
                    .tracker
                    .get(c.session_id)
                    .unwrap_or_else(|| p.shared.tracker.track(c.session_id, info.timeout_ms));
                live.touch();
                (c.session_id, info.password, info.timeout_ms, live)
            }
            _ => {
                tracing::debug!(
                    session = format!("{:#x}", c.session_id),
                    "reattach refused: expired or bad password"
                );
                out.push(ServerMessage {
                    kind: Some(OutKind::Connected(pb::ConnectResponse {
                        session_id: 0,
                        password: Default::default(),
                        timeout_ms: 0,
                        zxid: applied,
                        server_id: p.node_id(),
                    })),
                });
                return None;
            }
        }
    };
    if let Some(old) = p.shared.watches.attach(id, out.clone()) {
        if !old.same(out) {
            old.close();
        }
    }
    out.push(ServerMessage {
        kind: Some(OutKind::Connected(pb::ConnectResponse {
            session_id: id,
            password: bytes::Bytes::copy_from_slice(&password),
            timeout_ms,
            zxid: p.shared.applied_zxid(),
            server_id: p.node_id(),
        })),
    });
    Some((id, live))
}

struct Conn {
    p: Arc<Pipeline>,
    session: i64,
    live: Arc<Liveness>,
    out: Outbound,
    inflight: FuturesOrdered<BoxFuture<'static, Done>>,
    blocked: VecDeque<pb::Request>,
    closing: bool,
    /// This connection's identities (ZooKeeper's `authInfo`): `ip:<client address>`
    /// and every `addauth`; stamped on each write, checked by each read.
    auth: Vec<Id>,
}

impl Conn {
    async fn run<S>(&mut self, inbound: &mut S)
    where
        S: Stream<Item = Result<pb::ClientMessage, Status>> + Unpin + Send,
    {
        let out = self.out.clone();
        let max = self.p.config.limits.max_outstanding_requests;
        let mut throttled = false;
        // One `closed` future for the whole loop: it stays registered with the queue
        // instead of registering and unregistering a waiter for every request.
        let closed = out.closed();
        tokio::pin!(closed);
        loop {
            let full = self.inflight.len() + self.blocked.len() >= max;
            if full && !throttled {
                self.p
                    .shared
                    .metrics
                    .limits
                    .throttled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(
                    session = format!("{:#x}", self.session),
                    max,
                    "outstanding request limit reached; pausing reads"
                );
            }
            throttled = full;
            tokio::select! {
                biased;
                _ = &mut closed => return,
                Some(done) = self.inflight.next(), if !self.inflight.is_empty() => {
                    match done {
                        Done::Reply(m) => { self.out.push(m); }
                        Done::Closed(m) => {
                            self.out.push(m);
                            self.p.shared.tracker.forget(self.session);
                            return;
                        }
                    }
                    self.drain_blocked().await;
                }
                msg = inbound.next(), if !self.closing && !full => match msg {
                    Some(Ok(pb::ClientMessage { kind: Some(In::Request(req)) })) => {
                        self.live.touch();
                        if self.blocked.is_empty() {
                            self.start(req).await;
                        } else {
                            self.blocked.push_back(req);
                        }
                    }
                    Some(Ok(_)) => {
                        tracing::debug!("unexpected message after the handshake; closing");
                        return;
                    }
                    Some(Err(status)) => {
                        tracing::debug!(%status, "connection error");
                        return;
                    }
                    None => return,
                },
                else => return,
            }
        }
    }

    /// Starts requests that were waiting, as far as ordering allows.
    async fn drain_blocked(&mut self) {
        while let Some(req) = self.blocked.pop_front() {
            if !self.start(req).await {
                break;
            }
        }
    }

    /// Starts one request; returns false if it had to wait (put back at the front of
    /// `blocked`).
    async fn start(&mut self, req: pb::Request) -> bool {
        if self.closing {
            return true;
        }
        let xid = req.xid;
        if let Some(pb::request::Op::AddAuth(a)) = &req.op {
            // Ordered like a read: it affects only the requests after it.
            if !self.inflight.is_empty() {
                self.blocked.push_front(req);
                return false;
            }
            let resp = self.add_auth(xid, a);
            self.out.push(reply::message(resp));
            return true;
        }
        match prep::prepare(self.session, &req, self.p.config.max_data_bytes) {
            Prepared::Read => {
                if !self.inflight.is_empty() {
                    self.blocked.push_front(req);
                    return false;
                }
                read::execute(&self.p.shared, self.session, &self.auth, &req, &self.out);
            }
            Prepared::Write(mut cmd) => {
                if let Command::Txn { auth, .. } = &mut cmd {
                    auth.clone_from(&self.auth);
                }
                let ops_len = match &cmd {
                    Command::Txn { ops, .. } => ops.len(),
                    _ => 1,
                };
                let completion = self.p.proposer.submit(cmd);
                let shared = self.p.shared.clone();
                self.inflight.push_back(
                    async move {
                        let resp = match completion.await {
                            Ok((zxid, result)) => reply::from_apply(xid, zxid, &result, ops_len),
                            Err((code, msg)) => reply::error(xid, shared.applied_zxid(), code, msg),
                        };
                        Done::Reply(reply::message(resp))
                    }
                    .boxed(),
                );
            }
            Prepared::Sync(path) => {
                let p = self.p.clone();
                self.inflight.push_back(
                    async move {
                        let resp =
                            match submit::sync(&p.raft, p.node_id(), &p.peers, &p.shared).await {
                                Ok(()) => reply::ok(
                                    xid,
                                    p.shared.applied_zxid(),
                                    pb::response::Result::Sync(pb::SyncResponse { path }),
                                ),
                                Err((code, msg)) => {
                                    reply::error(xid, p.shared.applied_zxid(), code, msg)
                                }
                            };
                        Done::Reply(reply::message(resp))
                    }
                    .boxed(),
                );
            }
            Prepared::Admin => {
                let p = self.p.clone();
                self.inflight.push_back(
                    async move {
                        Done::Reply(reply::message(
                            crate::pipeline::admin::execute(&p, &req).await,
                        ))
                    }
                    .boxed(),
                );
            }
            Prepared::Close => {
                self.closing = true;
                self.out.mark_closing_session();
                let completion = self.p.proposer.submit(Command::CloseSession {
                    session: self.session,
                });
                let shared = self.p.shared.clone();
                self.inflight.push_back(
                    async move {
                        let resp = match completion.await {
                            Ok((zxid, result)) => reply::from_apply(xid, zxid, &result, 1),
                            Err((code, msg)) => reply::error(xid, shared.applied_zxid(), code, msg),
                        };
                        Done::Closed(reply::message(resp))
                    }
                    .boxed(),
                );
            }
            Prepared::Rejected(resp) => {
                let msg = reply::message(resp);
                if self.inflight.is_empty() {
                    self.out.push(msg);
                } else {
                    self.inflight
                        .push_back(futures::future::ready(Done::Reply(msg)).boxed());
                }
            }
        }
        true
    }
}

impl Conn {
    /// ZooKeeper's `addauth`: scheme `digest` with `user:password` adds
    /// `digest:user:base64(sha1(user:password))`, plus `super:` if that is the
    /// configured super digest. Any other scheme is AuthFailed.
    fn add_auth(&mut self, xid: i64, a: &pb::AddAuthRequest) -> pb::Response {
        let zxid = self.p.shared.applied_zxid();
        let text = std::str::from_utf8(&a.auth).ok();
        let digest = match (a.scheme.as_str(), text) {
            ("digest", Some(t)) => acl::digest(t),
            _ => None,
        };
        let Some(digest) = digest else {
            tracing::info!(scheme = a.scheme, "addauth refused");
            return reply::error(
                xid,
                zxid,
                Code::AuthFailed,
                format!(
                    "addauth: unsupported scheme {:?} or malformed credentials (digest needs user:password)",
                    a.scheme
                ),
            );
        };
        let mut add = |id: Id| {
            if !self.auth.contains(&id) {
                self.auth.push(id);
            }
        };
        if self.p.config.super_digest.as_deref() == Some(digest.as_str()) {
            add(acl::super_id());
        }
        add(Id::new("digest", digest));
        self.p
            .shared
            .watches
            .set_identities(self.session, &self.out, &self.auth);
        reply::ok(xid, zxid, pb::response::Result::Empty(pb::Empty {}))
    }
}
