//! The session task: owns the stream, the pending requests and the watch registry.
//!
//! Life cycle: `start` connects (the caller waits), then spawns [`SessionTask::run`]:
//! serve the connection until it breaks, then reconnect (next server, backoff) and
//! reattach with session id, password and last zxid; re-arm every watch with one
//! SetWatches; serve again. It ends on close (all clones dropped or `close()`) or expiry.
//!
//! Ordering invariants, enforced here and in [`super::wire`]:
//! - requests are written in the order they were called, with increasing xids: callers
//!   write directly while connected and nothing is queued for the task; otherwise their
//!   commands queue on one channel with one reader;
//! - a reply is handled (watch registered, caller completed) in stream order, so every
//!   event that precedes a reply on the stream reaches its watchers first;
//! - after a reattach, SetWatches is the first request written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use zk_proto::pb::{self, request::Op, server_message};
use zk_proto::{Code, CLOSE_XID, PING_XID};

use super::backoff::Backoff;
use super::connect::{self, ConnectError, Connection};
use super::heartbeat::Heartbeat;
use super::hosts::Hosts;
use super::pending::{Entry, Kind};
use super::wire::{self, Sender, Wire};
use super::{Command, Failure, ReplySender, Shared};
use crate::chroot::Chroot;
use crate::convert;
use crate::error::Error;
use crate::types::{EventType, SessionState, WatchedEvent};
use crate::watch::registry::{self, Registry, WatchRegistration};

/// The shortest connect attempt on the first connect, however many servers share the
/// connect timeout.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// What the builder decided.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) hosts: Vec<String>,
    pub(crate) shuffle: bool,
    pub(crate) chroot: Chroot,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// Reattach this session (id, password) instead of creating one.
    pub(crate) session: Option<(i64, Vec<u8>)>,
    /// TLS to the servers, if on.
    pub(crate) tls: Option<tonic::transport::ClientTlsConfig>,
}

/// Why serving a connection stopped.
#[derive(Debug)]
enum End {
    /// The connection broke; the session may live on.
    Lost(String),
    /// The session was closed.
    Closed,
    /// The session expired.
    Expired,
}

/// Connects (the caller waits for the first session) and spawns the task.
pub(crate) async fn start(config: Config) -> Result<(Sender, Arc<Shared>), Error> {
    let shared = Arc::new(Shared::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let wire = Arc::new(Mutex::new(Wire::new()));
    let mut hosts = Hosts::new(config.hosts.clone());
    if config.shuffle {
        hosts.shuffle();
    }
    let (session_id, password) = config.session.clone().unwrap_or_default();
    let now = Instant::now();
    let mut task = SessionTask {
        hb: Heartbeat::new(config.session_timeout, now),
        config,
        shared: shared.clone(),
        rx,
        hosts,
        registry: Registry::default(),
        wire: wire.clone(),
        session_id,
        password,
        suppressed: HashMap::new(),
        close_replies: Vec::new(),
    };
    let (conn, sent_at) = task.first_connect().await?;
    task.attached(&conn, sent_at, false);
    tokio::spawn(task.run(conn));
    Ok((Sender::new(tx, wire), shared))
}

struct SessionTask {
    config: Config,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Command>,
    hosts: Hosts,
    registry: Registry,
    /// Xids, pending requests and the stream callers write to (shared with them).
    wire: Arc<Mutex<Wire>>,
    hb: Heartbeat,
    session_id: i64,
    password: Vec<u8>,
    /// Server paths whose `*WatchRemoved` events to drop: an internal RemoveWatches (for
    /// a dropped persistent watcher) is in flight, and a server that announces removals
    /// must not end the path's other local watchers (e.g. the other persistent mode).
    suppressed: HashMap<String, usize>,
    /// Callers of `close()` waiting for the end.
    close_replies: Vec<oneshot::Sender<()>>,
}

fn ok_reply(reply: Option<ReplySender>) {
    if let Some(reply) = reply {
        let _ = reply.send(Ok(pb::Response::default()));
    }
}

impl SessionTask {
    async fn run(mut self, first: Connection) {
        let mut conn = first;
        loop {
            let reason = match self.serve(&mut conn).await {
                End::Lost(reason) => reason,
                end => return self.finish(end),
            };
            tracing::warn!(session = format_args!("{:#x}", self.session_id), %reason, "connection lost; reconnecting");
            drop(conn);
            self.disconnected();
            match self.reconnect().await {
                Ok((c, sent_at)) => {
                    conn = c;
                    self.attached(&conn, sent_at, true);
                }
                Err(end) => return self.finish(end),
            }
        }
    }

    fn connect_request(&self) -> pb::ConnectRequest {
        pb::ConnectRequest {
            session_id: self.session_id,
            password: Bytes::from(self.password.clone()),
            timeout_ms: u32::try_from(self.config.session_timeout.as_millis()).unwrap_or(u32::MAX),
            last_zxid_seen: self.shared.last_zxid(),
        }
    }

    /// Refuses a `connected` answer that would not continue our session.
    fn check_attach(&self, conn: &Connection) -> Result<(), ConnectError> {
        let r = &conn.response;
        if self.session_id != 0 {
            if r.timeout_ms == 0 || r.session_id != self.session_id {
                // Timeout 0 is ZooKeeper's "expired"; another id would be a new session,
                // which we never accept silently.
                return Err(ConnectError::Expired);
            }
        } else if r.timeout_ms == 0 || r.session_id == 0 {
            return Err(ConnectError::Refused(
                Code::SystemError,
                "invalid connect response".into(),
            ));
        }
        Ok(())
    }

    /// The first connect: rotate over the servers until one attaches, within the connect
    /// timeout overall.
    async fn first_connect(&mut self) -> Result<(Connection, Instant), Error> {
        let deadline = Instant::now() + self.config.connect_timeout;
        let n = u32::try_from(self.hosts.len().max(1)).unwrap_or(u32::MAX);
        let per_attempt = (self.config.connect_timeout / n).max(MIN_ATTEMPT);
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        let mut last = Error::Timeout;
        let mut tried = 0usize;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(last);
            }
            let host = self.hosts.next_host();
            let limit = per_attempt.min(deadline - now);
            match timeout(
                limit,
                connect::open(
                    &host,
                    self.connect_request(),
                    limit,
                    self.config.tls.as_ref(),
                ),
            )
            .await
            {
                Ok(Ok(conn)) => match self.check_attach(&conn) {
                    Ok(()) => return Ok((conn, now)),
                    Err(ConnectError::Expired) => {
                        return Err(Failure::Expired.into_error("connect", ""))
                    }
                    Err(e) => last = Error::Transport(format!("{host}: {e}")),
                },
                Ok(Err(ConnectError::Expired)) => {
                    return Err(Failure::Expired.into_error("connect", ""))
                }
                Ok(Err(ConnectError::Refused(code, message))) => {
                    last = Error::from_code(code, "connect", &host, &message);
                }
                Ok(Err(ConnectError::Transport(m))) => last = Error::Transport(m),
                Err(_) => last = Error::Timeout,
            }
            tracing::debug!(%host, error = %last, "connect attempt failed");
            tried += 1;
            if tried >= self.hosts.len() {
                // A whole round failed: back off before the next.
                tried = 0;
                let pause = backoff
                    .next_delay()
                    .min(deadline.saturating_duration_since(Instant::now()));
                sleep(pause).await;
            }
        }
    }

    /// A connection attached the session: publish it and, on a reconnect, re-arm watches.
    fn attached(&mut self, conn: &Connection, sent_at: Instant, reconnect: bool) {
        let r = &conn.response;
        self.session_id = r.session_id;
        self.password = r.password.to_vec();
        let timeout = Duration::from_millis(u64::from(r.timeout_ms));
        self.shared.attached(r.session_id, &r.password, timeout);
        self.shared.acknowledged(sent_at);
        self.hb = Heartbeat::new(timeout, Instant::now());
        tracing::info!(
            session = format_args!("{:#x}", r.session_id),
            host = %conn.host,
            timeout_ms = r.timeout_ms,
            reconnect,
            "session attached"
        );
        self.shared.set_state(SessionState::Connected);
        // Under the wire lock until callers may write: re-sent identities and re-armed
        // watches go first.
        let mut w = wire::lock(&self.wire);
        w.last_sent = Instant::now();
        if reconnect {
            for auth in w.auths.clone() {
                let xid = w.next_xid();
                w.write(&conn.outbound, xid, Op::AddAuth(auth), Kind::Auth);
            }
            self.registry.session_changed(SessionState::Connected);
            let mut req = self.registry.set_watches(None);
            if !registry::is_empty(&req) {
                req.relative_zxid = self.shared.last_zxid();
                let xid = w.next_xid();
                // A failed write shows up as a broken stream in `serve`.
                w.write(&conn.outbound, xid, Op::SetWatches(req), Kind::SetWatches);
            }
        }
        w.open(&conn.outbound);
    }

    /// Writes a request with `xid` and records it as pending. `false` if the stream is gone.
    fn write(&mut self, conn: &Connection, xid: i64, op: Op, kind: Kind) -> bool {
        wire::lock(&self.wire).write(&conn.outbound, xid, op, kind)
    }

    async fn serve(&mut self, conn: &mut Connection) -> End {
        // One timer for both heartbeat deadlines, re-armed only when it fires: traffic
        // only moves them later, so a request or a reply costs no timer operation.
        let timer = sleep_until(self.hb.ping_at().min(self.hb.dead_at()));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                msg = conn.inbound.message() => match msg {
                    Ok(Some(msg)) => {
                        self.hb.heard(Instant::now());
                        if let Some(end) = self.on_message(msg, conn) {
                            return end;
                        }
                    }
                    Ok(None) => return End::Lost(format!("{}: stream closed by the server", conn.host)),
                    Err(status) => return End::Lost(format!("{}: {status}", conn.host)),
                },
                cmd = self.rx.recv() => match cmd {
                    Some(Command::Close { reply }) => {
                        self.close_replies.extend(reply);
                        {
                            let mut w = wire::lock(&self.wire);
                            w.shut();
                            w.handled();
                        }
                        return self.close_on(conn).await;
                    }
                    None => return self.close_on(conn).await,
                    Some(cmd) => {
                        let end = self.on_command(cmd, conn);
                        // Only now may later calls write directly: this one is written.
                        wire::lock(&self.wire).handled();
                        if let Some(end) = end {
                            return end;
                        }
                    }
                },
                () = &mut timer => {
                    let now = Instant::now();
                    self.hb.sent(wire::lock(&self.wire).last_sent);
                    if now >= self.hb.dead_at() {
                        return End::Lost(format!("{}: nothing heard from the server in time", conn.host));
                    }
                    if now >= self.hb.ping_at()
                        && !self.write(conn, PING_XID, Op::Ping(pb::PingRequest {}), Kind::Ping)
                    {
                        return End::Lost(format!("{}: stream closed", conn.host));
                    }
                    timer.as_mut().reset(self.hb.ping_at().min(self.hb.dead_at()));
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command, conn: &Connection) -> Option<End> {
        match cmd {
            Command::Request { op, watch, reply } => {
                let written = wire::lock(&self.wire).request(
                    &conn.outbound,
                    op,
                    Kind::Request { reply, watch },
                );
                if !written {
                    return Some(End::Lost(format!("{}: stream closed", conn.host)));
                }
                None
            }
            Command::RemovePersistent { id, reply } => {
                self.remove_persistent(id, reply, Some(conn))
            }
            Command::Close { reply } => {
                // Handled by the callers of on_command; keep the reply if one slips through.
                self.close_replies.extend(reply);
                None
            }
        }
    }

    /// A persistent watcher is gone: drop it locally and, when it was the last of its
    /// path and mode, remove the server-side watch of that mode only (RemoveWatches with
    /// PERSISTENT or PERSISTENT_RECURSIVE): the path's other watches stay armed.
    fn remove_persistent(
        &mut self,
        id: u64,
        reply: Option<ReplySender>,
        conn: Option<&Connection>,
    ) -> Option<End> {
        let Some((path, recursive)) = self.registry.remove_persistent(id) else {
            ok_reply(reply);
            return None;
        };
        if self.registry.has_persistent(&path, recursive) {
            ok_reply(reply);
            return None;
        }
        let Some(conn) = conn else {
            // Disconnected: the reattach will not re-arm it, so it is gone.
            ok_reply(reply);
            return None;
        };
        *self.suppressed.entry(path.clone()).or_default() += 1;
        let watcher_type = if recursive {
            pb::WatcherType::PersistentRecursive
        } else {
            pb::WatcherType::Persistent
        };
        let op = Op::RemoveWatches(pb::RemoveWatchesRequest {
            path: path.clone(),
            watcher_type: watcher_type as i32,
            check_only: false,
        });
        let kind = Kind::RemovePersistent { path, reply };
        if wire::lock(&self.wire).request(&conn.outbound, op, kind) {
            None
        } else {
            Some(End::Lost(format!("{}: stream closed", conn.host)))
        }
    }

    fn on_message(&mut self, msg: pb::ServerMessage, conn: &Connection) -> Option<End> {
        match msg.kind {
            Some(server_message::Kind::Event(event)) => {
                self.shared.saw_zxid(event.zxid);
                self.on_event(&event);
                None
            }
            Some(server_message::Kind::Response(resp)) => self.on_response(resp, conn),
            Some(server_message::Kind::Connected(_)) => {
                tracing::warn!(host = %conn.host, "unexpected connected message; ignored");
                None
            }
            None => None,
        }
    }

    fn on_event(&mut self, event: &pb::WatchEvent) {
        let Some(watched) = convert::watched_event(event, &self.config.chroot) else {
            tracing::debug!(event_type = event.event_type, path = %event.path, "unknown event type; ignored");
            return;
        };
        let removal = matches!(
            watched.event_type,
            EventType::DataWatchRemoved
                | EventType::ChildWatchRemoved
                | EventType::PersistentWatchRemoved
        );
        if removal && self.suppressed.contains_key(&event.path) {
            return;
        }
        self.registry.route(&event.path, &watched);
    }

    fn on_response(&mut self, resp: pb::Response, conn: &Connection) -> Option<End> {
        self.shared.saw_zxid(resp.zxid);
        let taken = wire::lock(&self.wire).pending.take(resp.xid);
        let Some(entry) = taken else {
            tracing::warn!(xid = resp.xid, "reply for an unknown xid; ignored");
            return None;
        };
        self.shared.acknowledged(entry.sent_at);
        let code = Code::from_i32(resp.err);
        match entry.kind {
            Kind::Ping | Kind::Close => {}
            Kind::Auth => {
                if !code.is_ok() {
                    tracing::warn!(%code, message = %resp.message, "re-sending addauth failed");
                }
            }
            Kind::SetWatches => {
                if !code.is_ok() && code != Code::SessionExpired {
                    tracing::warn!(%code, message = %resp.message, "re-arming watches failed");
                }
            }
            Kind::RemovePersistent { path, reply } => {
                if let Some(n) = self.suppressed.get_mut(&path) {
                    *n -= 1;
                    if *n == 0 {
                        self.suppressed.remove(&path);
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(resp));
                }
            }
            Kind::Request { reply, watch } => {
                if let Some(watch) = watch {
                    if let Some(end) = self.register(watch, &resp, code, conn) {
                        let _ = reply.send(Ok(resp));
                        return Some(end);
                    }
                }
                let _ = reply.send(Ok(resp));
            }
        }
        (code == Code::SessionExpired).then_some(End::Expired)
    }

    /// The request carrying `watch` got its reply: register the watch if it succeeded.
    fn register(
        &mut self,
        watch: WatchRegistration,
        resp: &pb::Response,
        code: Code,
        conn: &Connection,
    ) -> Option<End> {
        use pb::response::Result as R;
        let ok = code.is_ok();
        match watch {
            WatchRegistration::Data { path, tx } if ok => self.registry.add_data(path, tx),
            WatchRegistration::Child { path, tx } if ok => self.registry.add_child(path, tx),
            WatchRegistration::Exists { path, tx } => {
                let exists = ok
                    && matches!(
                        &resp.result,
                        Some(R::Exists(pb::ExistsResponse { stat: Some(_) }))
                            | Some(R::Stat(pb::StatResponse { stat: Some(_) }))
                    );
                if exists {
                    self.registry.add_data(path, tx);
                } else if ok || code == Code::NoNode {
                    self.registry.add_exist(path, tx);
                }
            }
            WatchRegistration::Persistent {
                path,
                recursive,
                id,
                tx,
            } if ok => {
                let abandoned = tx.is_closed();
                self.registry.add_persistent(path, recursive, id, tx);
                if abandoned {
                    // The caller dropped the `watch` future before the reply: undo.
                    return self.remove_persistent(id, None, Some(conn));
                }
            }
            WatchRegistration::Remove { path, kind } if ok => {
                let client_path = self.config.chroot.strip(&path);
                let zxid = resp.zxid;
                self.registry
                    .remove_local(&path, kind, |event_type| WatchedEvent {
                        event_type,
                        state: SessionState::Connected,
                        path: client_path.clone(),
                        zxid,
                    });
            }
            _ => {}
        }
        None
    }

    /// Closes the session on a live connection: CloseRequest, then wait (bounded) for its
    /// reply while finishing earlier replies and events. New requests fail with `Closed`.
    async fn close_on(&mut self, conn: &mut Connection) -> End {
        let written = {
            let mut w = wire::lock(&self.wire);
            w.shut();
            w.write(
                &conn.outbound,
                CLOSE_XID,
                Op::Close(pb::CloseRequest {}),
                Kind::Close,
            )
        };
        if !written {
            return End::Closed;
        }
        let deadline = Instant::now() + self.hb.close_wait();
        let mut rx_open = true;
        loop {
            tokio::select! {
                biased;
                msg = conn.inbound.message() => match msg {
                    Ok(Some(msg)) => {
                        let done = matches!(&msg.kind, Some(server_message::Kind::Response(r)) if r.xid == CLOSE_XID);
                        let _ = self.on_message(msg, conn);
                        if done {
                            return End::Closed;
                        }
                    }
                    Ok(None) | Err(_) => return End::Closed,
                },
                cmd = self.rx.recv(), if rx_open => match cmd {
                    Some(cmd) => {
                        wire::lock(&self.wire).handled();
                        self.reject(cmd, Failure::Closed);
                    }
                    None => rx_open = false,
                },
                _ = sleep_until(deadline) => {
                    tracing::warn!(host = %conn.host, "no reply to close in time");
                    return End::Closed;
                }
            }
        }
    }

    /// Fails a command that cannot be sent.
    fn reject(&mut self, cmd: Command, failure: Failure) {
        match cmd {
            Command::Request { reply, .. } => {
                let _ = reply.send(Err(failure));
            }
            Command::RemovePersistent { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(failure));
                }
            }
            Command::Close { reply } => self.close_replies.extend(reply),
        }
    }

    fn fail(entry: Entry, failure: Failure) {
        match entry.kind {
            Kind::Request { reply, .. }
            | Kind::RemovePersistent {
                reply: Some(reply), ..
            } => {
                let _ = reply.send(Err(failure));
            }
            _ => {}
        }
    }

    /// The connection broke: everything in flight fails with ConnectionLoss.
    fn disconnected(&mut self) {
        self.shared.set_state(SessionState::Disconnected);
        let lost: Vec<Entry> = {
            let mut w = wire::lock(&self.wire);
            w.shut();
            w.pending.drain().collect()
        };
        for entry in lost {
            Self::fail(entry, Failure::ConnectionLoss);
        }
        self.suppressed.clear();
        self.registry.session_changed(SessionState::Disconnected);
    }

    /// Runs `fut` while disconnected, failing requests with ConnectionLoss meanwhile.
    /// `Err` when the client closes in the meantime.
    async fn wait_disconnected<F: std::future::Future>(
        &mut self,
        fut: F,
    ) -> Result<F::Output, End> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                cmd = self.rx.recv() => match cmd.inspect(|_| wire::lock(&self.wire).handled()) {
                    None => return Err(End::Closed),
                    Some(Command::Close { reply }) => {
                        self.close_replies.extend(reply);
                        return Err(End::Closed);
                    }
                    Some(Command::Request { reply, .. }) => {
                        let _ = reply.send(Err(Failure::ConnectionLoss));
                    }
                    Some(Command::RemovePersistent { id, reply }) => {
                        let _ = self.remove_persistent(id, reply, None);
                    }
                },
            }
        }
    }

    /// Reattaches the session: the next server each time, backoff between attempts, until
    /// the session is surely expired (a whole timeout since the server last heard from
    /// us... as far as we can tell: since we last heard from it).
    async fn reconnect(&mut self) -> Result<(Connection, Instant), End> {
        let expire_at = self.hb.expired_at();
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        let mut first = true;
        loop {
            if !first {
                let delay = backoff.next_delay();
                self.wait_disconnected(sleep(delay)).await?;
            }
            first = false;
            let now = Instant::now();
            if now >= expire_at {
                tracing::warn!(
                    session = format_args!("{:#x}", self.session_id),
                    "no server reattached the session within its timeout"
                );
                return Err(End::Expired);
            }
            let host = self.hosts.next_host();
            let limit = self.config.connect_timeout.min(expire_at - now);
            let request = self.connect_request();
            let tls = self.config.tls.clone();
            match self
                .wait_disconnected(timeout(
                    limit,
                    connect::open(&host, request, limit, tls.as_ref()),
                ))
                .await?
            {
                Ok(Ok(conn)) => match self.check_attach(&conn) {
                    Ok(()) => return Ok((conn, now)),
                    Err(ConnectError::Expired) => return Err(End::Expired),
                    Err(e) => tracing::debug!(%host, error = %e, "reconnect refused"),
                },
                Ok(Err(ConnectError::Expired)) => return Err(End::Expired),
                Ok(Err(e)) => tracing::debug!(%host, error = %e, "reconnect attempt failed"),
                Err(_) => tracing::debug!(%host, "reconnect attempt timed out"),
            }
        }
    }

    /// The session ended (closed or expired): publish the state, fail everything, resolve
    /// every watcher with the session event, answer close callers.
    fn finish(mut self, end: End) {
        let state = match end {
            End::Expired => SessionState::Expired,
            End::Closed | End::Lost(_) => SessionState::Closed,
        };
        let failure = Failure::after(state);
        self.shared.set_state(state);
        let left: Vec<Entry> = {
            let mut w = wire::lock(&self.wire);
            w.shut();
            w.pending.drain().collect()
        };
        self.rx.close();
        for entry in left {
            Self::fail(entry, failure);
        }
        self.registry.terminate(state);
        while let Ok(cmd) = self.rx.try_recv() {
            self.reject(cmd, failure);
        }
        for reply in self.close_replies.drain(..) {
            let _ = reply.send(());
        }
        tracing::info!(
            session = format_args!("{:#x}", self.session_id),
            ?state,
            "session ended"
        );
    }
}
