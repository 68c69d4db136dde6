//! The `ZooKeeper.Session` gRPC service: one bidirectional stream per connection,
//! served by a [`crate::session::conn`] task.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use tonic::{Request, Response, Status, Streaming};
use zk_proto::pb::{
    self, client_message::Kind as In, request::Op, server_message::Kind as OutKind,
    zoo_keeper_server::ZooKeeper, ServerMessage,
};

use crate::pipeline::Pipeline;
use crate::session::conn;
use crate::session::outbound::Outbound;

/// The native client service.
pub struct SessionService {
    pipeline: Arc<Pipeline>,
}

impl SessionService {
    /// A service over this node's pipeline.
    pub fn new(pipeline: Arc<Pipeline>) -> SessionService {
        SessionService { pipeline }
    }
}

/// The server half of a session stream.
pub type SessionStream =
    Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ZooKeeper for SessionService {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::ClientMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        let info = request
            .extensions()
            .get::<crate::tls::io::ConnInfo>()
            .cloned()
            .unwrap_or_default();
        let request_peer = info.remote.or_else(|| request.remote_addr());
        let peer = request_peer.unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let metrics = self.pipeline.shared.metrics.clone();
        let guard = metrics.open_connection(peer, "native");
        // Request start times in request order (replies come back in that order), for
        // the per-op counters and latency histograms. Per connection, so the lock is
        // never contended.
        let started: Arc<Mutex<Started>> = Arc::default();
        // Why the client's stream failed (e.g. a message over the size limit), if it did:
        // the reply stream ends with it, so the client learns why.
        let failed: Arc<Mutex<Option<Status>>> = Arc::default();
        let inbound = request.into_inner().map({
            let (metrics, conn, started) = (metrics.clone(), guard.stats.clone(), started.clone());
            let failed = failed.clone();
            move |m| {
                if let Err(status) = &m {
                    *failed.lock() = Some(status.clone());
                }
                if let Ok(pb::ClientMessage {
                    kind: Some(In::Request(r)),
                }) = &m
                {
                    metrics.request_received(&conn);
                    started
                        .lock()
                        .push_back((r.xid, op_name(r), Instant::now()));
                }
                m
            }
        });
        let out = Outbound::with_limits(&self.pipeline.config.limits, metrics.clone());
        tokio::spawn(conn::serve(
            self.pipeline.clone(),
            inbound,
            out.clone(),
            crate::tree::acl::connection_ids(request_peer, info.x509.as_deref()),
        ));
        let unanswered = Unanswered {
            started: started.clone(),
            metrics: metrics.clone(),
            guard,
        };
        let outbound = out.stream().map(move |m| {
            let conn = &unanswered.guard.stats;
            match &m.kind {
                Some(OutKind::Response(r)) => {
                    if let Some((op, t)) = take_started(&mut started.lock(), r.xid) {
                        metrics.request_done(conn, op, t.elapsed(), r.err);
                    }
                }
                Some(OutKind::Event(_)) => metrics.packet_sent(conn),
                Some(OutKind::Connected(c)) => conn.session.store(c.session_id, Relaxed),
                None => {}
            }
            Ok(m)
        });
        // A connection cut off for not reading ends with a clear status (after what
        // was already sent, once the client reads again).
        let tail = futures::stream::once({
            let out = out.clone();
            async move { (out.overflowed(), failed.lock().take()) }
        })
        .filter_map(|(overflowed, failed)| async move {
            if overflowed {
                return Some(Err(Status::resource_exhausted(
                    "the client did not read its replies and events; connection closed \
                     (--max-outbound-messages / --max-outbound-bytes); reconnect to resume \
                     the session",
                )));
            }
            failed.map(|f| {
                Err(Status::new(
                    f.code(),
                    format!("request stream failed, connection closed: {}", f.message()),
                ))
            })
        });
        Ok(Response::new(Box::pin(outbound.chain(tail))))
    }
}

/// Requests not answered yet, oldest first: (xid, op name, when received).
type Started = VecDeque<(i64, &'static str, Instant)>;

/// The entry of the request answered by a reply with `xid`: the oldest one, as replies
/// come in request order (a search, should one ever be answered out of order).
fn take_started(started: &mut Started, xid: i64) -> Option<(&'static str, Instant)> {
    let at = if started.front().is_some_and(|e| e.0 == xid) {
        0
    } else {
        started.iter().position(|e| e.0 == xid)?
    };
    started.remove(at).map(|(_, op, t)| (op, t))
}

/// Owned by the outbound stream: when the connection ends, requests it never answered
/// stop counting as outstanding, and the connection leaves the table.
struct Unanswered {
    started: Arc<Mutex<Started>>,
    metrics: Arc<crate::admin::metrics::Metrics>,
    guard: crate::admin::metrics::ConnGuard,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let n = self.started.lock().len() as i64;
        self.metrics.outstanding.fetch_sub(n, Relaxed);
        self.guard.stats.outstanding.fetch_sub(n, Relaxed);
    }
}

/// The metrics label of a native request (ZooKeeper's op names).
fn op_name(r: &pb::Request) -> &'static str {
    match &r.op {
        Some(Op::Create(_)) => "create",
        Some(Op::Delete(_)) => "delete",
        Some(Op::Exists(_)) => "exists",
        Some(Op::GetData(_)) => "getData",
        Some(Op::SetData(_)) => "setData",
        Some(Op::GetChildren(_)) => "getChildren",
        Some(Op::Multi(_)) => "multi",
        Some(Op::MultiRead(_)) => "multiRead",
        Some(Op::Sync(_)) => "sync",
        Some(Op::Ping(_)) => "ping",
        Some(Op::Close(_)) => "closeSession",
        Some(Op::AddWatch(_)) => "addWatch",
        Some(Op::RemoveWatches(_)) => "removeWatches",
        Some(Op::SetWatches(_)) => "setWatches",
        Some(Op::GetEphemerals(_)) => "getEphemerals",
        Some(Op::GetAllChildrenNumber(_)) => "getAllChildrenNumber",
        Some(Op::ClusterStatus(_)) => "clusterStatus",
        Some(Op::Membership(_)) => "membership",
        Some(Op::SetAcl(_)) => "setACL",
        Some(Op::GetAcl(_)) => "getACL",
        Some(Op::AddAuth(_)) => "auth",
        None => "other",
    }
}
