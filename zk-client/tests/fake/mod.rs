//! A scripted in-process fake of the server's session protocol, just enough znode
//! semantics to drive the client's session task: create/delete/exists/get/set/children,
//! one-shot and persistent watches, SetWatches, ping, close, and knobs to break
//! connections, expire sessions and stop answering. Not the real server.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use zk_proto::pb::zoo_keeper_server::{ZooKeeper, ZooKeeperServer};
use zk_proto::pb::{self, client_message, request::Op, response::Result as R, server_message};
use zk_proto::{path, Code, CLOSE_XID};

type Out = mpsc::UnboundedSender<Result<pb::ServerMessage, Status>>;

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub data: Bytes,
    pub version: i32,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub cversion: i32,
    pub owner: i64,
}

#[derive(Default)]
pub struct Sess {
    pub password: Bytes,
    pub expired: bool,
    stream: Option<(u64, Out)>,
    pub data: HashSet<String>,
    pub exist: HashSet<String>,
    pub child: HashSet<String>,
    pub persistent: HashSet<String>,
    pub recursive: HashSet<String>,
}

#[derive(Default)]
pub struct State {
    pub nodes: BTreeMap<String, Node>,
    pub zxid: i64,
    next_session: i64,
    next_conn: u64,
    pub sessions: HashMap<i64, Sess>,
    /// (session, xid, op) of every request, in arrival order.
    pub log: Vec<(i64, i64, &'static str)>,
    pub set_watches: Vec<(i64, pb::SetWatchesRequest)>,
    pub connects: Vec<pb::ConnectRequest>,
    /// Answer a reattach of an expired session with an error response instead of a
    /// `connected` with timeout 0.
    pub expire_with_error: bool,
    /// Swallow requests (no replies) to simulate a hung server.
    pub mute: bool,
}

#[derive(Clone, Default)]
pub struct Fake {
    state: Arc<Mutex<State>>,
}

fn msg(kind: server_message::Kind) -> Result<pb::ServerMessage, Status> {
    Ok(pb::ServerMessage { kind: Some(kind) })
}

fn pstat(n: &Node, children: i32) -> pb::Stat {
    pb::Stat {
        czxid: n.czxid,
        mzxid: n.mzxid,
        version: n.version,
        cversion: n.cversion,
        ephemeral_owner: n.owner,
        data_length: n.data.len() as i32,
        num_children: children,
        pzxid: n.pzxid,
        ..Default::default()
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Create(_) => "create",
        Op::Delete(_) => "delete",
        Op::Exists(_) => "exists",
        Op::GetData(_) => "get_data",
        Op::SetData(_) => "set_data",
        Op::GetChildren(_) => "get_children",
        Op::Multi(_) => "multi",
        Op::MultiRead(_) => "multi_read",
        Op::Sync(_) => "sync",
        Op::Ping(_) => "ping",
        Op::Close(_) => "close",
        Op::AddWatch(_) => "add_watch",
        Op::RemoveWatches(_) => "remove_watches",
        Op::SetWatches(_) => "set_watches",
        Op::GetEphemerals(_) => "get_ephemerals",
        Op::GetAllChildrenNumber(_) => "get_all_children_number",
    }
}

impl State {
    fn children(&self, p: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|k| k.as_str() != "/" && path::parent(k) == Some(p))
            .map(|k| path::basename(k).to_string())
            .collect()
    }

    fn send(&self, sid: i64, m: Result<pb::ServerMessage, Status>) {
        if let Some((_, out)) = self.sessions.get(&sid).and_then(|s| s.stream.as_ref()) {
            let _ = out.send(m);
        }
    }

    /// Fires watches of every session for an event on `p`.
    fn fire(&mut self, p: &str, t: pb::EventType) {
        use pb::EventType::*;
        let zxid = self.zxid;
        let mut deliveries = Vec::new();
        for (sid, s) in self.sessions.iter_mut() {
            let mut hit = false;
            if matches!(t, NodeCreated | NodeDataChanged | NodeDeleted) {
                hit |= s.data.remove(p) | s.exist.remove(p);
            }
            if matches!(t, NodeChildrenChanged | NodeDeleted) {
                hit |= s.child.remove(p);
            }
            hit |= s.persistent.contains(p);
            if t != NodeChildrenChanged {
                let mut at = Some(p);
                while let Some(a) = at {
                    hit |= s.recursive.contains(a);
                    at = path::parent(a);
                }
            }
            if hit {
                deliveries.push(*sid);
            }
        }
        for sid in deliveries {
            let ev = pb::WatchEvent {
                event_type: t as i32,
                path: p.to_string(),
                zxid,
            };
            self.send(sid, msg(server_message::Kind::Event(ev)));
        }
    }

    fn handle(&mut self, sid: i64, xid: i64, op: Op) -> pb::Response {
        let mut resp = pb::Response {
            xid,
            zxid: self.zxid,
            ..Default::default()
        };
        let fail = |mut r: pb::Response, c: Code| {
            r.err = c.as_i32();
            r
        };
        match op {
            Op::Ping(_) | Op::Sync(_) | Op::Close(_) => resp.result = Some(R::Empty(pb::Empty {})),
            Op::Create(c) => {
                let parent = path::parent(&c.path).unwrap_or("/").to_string();
                let Some(pn) = self.nodes.get(&parent).cloned() else {
                    return fail(resp, Code::NoNode);
                };
                let mut p = c.path.clone();
                if c.mode == pb::CreateMode::PersistentSequential as i32
                    || c.mode == pb::CreateMode::EphemeralSequential as i32
                {
                    p = format!("{}{:010}", c.path, pn.cversion);
                }
                if self.nodes.contains_key(&p) {
                    return fail(resp, Code::NodeExists);
                }
                self.zxid += 1;
                let z = self.zxid;
                let ephemeral = c.mode == pb::CreateMode::Ephemeral as i32
                    || c.mode == pb::CreateMode::EphemeralSequential as i32;
                let node = Node {
                    data: c.data,
                    czxid: z,
                    mzxid: z,
                    pzxid: z,
                    owner: if ephemeral { sid } else { 0 },
                    ..Default::default()
                };
                let stat = pstat(&node, 0);
                self.nodes.insert(p.clone(), node);
                if let Some(pn) = self.nodes.get_mut(&parent) {
                    pn.cversion += 1;
                    pn.pzxid = z;
                }
                self.fire(&p, pb::EventType::NodeCreated);
                self.fire(&parent, pb::EventType::NodeChildrenChanged);
                resp.zxid = z;
                resp.result = Some(R::Create(pb::CreateResponse {
                    path: p,
                    stat: Some(stat),
                }));
            }
            Op::Delete(d) => {
                let Some(n) = self.nodes.get(&d.path) else {
                    return fail(resp, Code::NoNode);
                };
                if d.version != -1 && d.version != n.version {
                    return fail(resp, Code::BadVersion);
                }
                if !self.children(&d.path).is_empty() {
                    return fail(resp, Code::NotEmpty);
                }
                self.zxid += 1;
                self.nodes.remove(&d.path);
                let parent = path::parent(&d.path).unwrap_or("/").to_string();
                self.fire(&d.path, pb::EventType::NodeDeleted);
                self.fire(&parent, pb::EventType::NodeChildrenChanged);
                resp.zxid = self.zxid;
                resp.result = Some(R::Empty(pb::Empty {}));
            }
            Op::SetData(s) => {
                let Some(n) = self.nodes.get(&s.path) else {
                    return fail(resp, Code::NoNode);
                };
                if s.version != -1 && s.version != n.version {
                    return fail(resp, Code::BadVersion);
                }
                self.zxid += 1;
                let z = self.zxid;
                let children = self.children(&s.path).len() as i32;
                let n = self.nodes.get_mut(&s.path).expect("checked");
                n.data = s.data;
                n.version += 1;
                n.mzxid = z;
                let stat = pstat(n, children);
                self.fire(&s.path, pb::EventType::NodeDataChanged);
                resp.zxid = z;
                resp.result = Some(R::Stat(pb::StatResponse { stat: Some(stat) }));
            }
            Op::Exists(e) => {
                let stat = self
                    .nodes
                    .get(&e.path)
                    .map(|n| pstat(n, self.children(&e.path).len() as i32));
                let sess = self.sessions.entry(sid).or_default();
                if e.watch {
                    if stat.is_some() {
                        sess.data.insert(e.path.clone());
                    } else {
                        sess.exist.insert(e.path.clone());
                    }
                }
                resp.result = Some(R::Exists(pb::ExistsResponse { stat }));
            }
            Op::GetData(g) => {
                let Some(n) = self.nodes.get(&g.path) else {
                    return fail(resp, Code::NoNode);
                };
                let r = pb::GetDataResponse {
                    data: n.data.clone(),
                    stat: Some(pstat(n, self.children(&g.path).len() as i32)),
                };
                if g.watch {
                    self.sessions.entry(sid).or_default().data.insert(g.path);
                }
                resp.result = Some(R::GetData(r));
            }
            Op::GetChildren(g) => {
                let Some(n) = self.nodes.get(&g.path) else {
                    return fail(resp, Code::NoNode);
                };
                let children = self.children(&g.path);
                let r = pb::GetChildrenResponse {
                    stat: Some(pstat(n, children.len() as i32)),
                    children,
                };
                if g.watch {
                    self.sessions.entry(sid).or_default().child.insert(g.path);
                }
                resp.result = Some(R::GetChildren(r));
            }
            Op::AddWatch(a) => {
                let s = self.sessions.entry(sid).or_default();
                if a.mode == pb::AddWatchMode::PersistentRecursiveWatch as i32 {
                    s.recursive.insert(a.path);
                } else {
                    s.persistent.insert(a.path);
                }
                resp.result = Some(R::Empty(pb::Empty {}));
            }
            Op::RemoveWatches(r) => {
                let s = self.sessions.entry(sid).or_default();
                let any = [
                    s.data.remove(&r.path),
                    s.exist.remove(&r.path),
                    s.child.remove(&r.path),
                    s.persistent.remove(&r.path),
                    s.recursive.remove(&r.path),
                ]
                .contains(&true);
                if !any {
                    return fail(resp, Code::NoWatcher);
                }
                resp.result = Some(R::Empty(pb::Empty {}));
            }
            Op::SetWatches(w) => {
                self.set_watches.push((sid, w.clone()));
                let rel = w.relative_zxid;
                let mut fire = Vec::new();
                {
                    let s = self.sessions.entry(sid).or_default();
                    s.data.extend(w.data_watches.iter().cloned());
                    s.exist.extend(w.exist_watches.iter().cloned());
                    s.child.extend(w.child_watches.iter().cloned());
                    s.persistent.extend(w.persistent_watches.iter().cloned());
                    s.recursive
                        .extend(w.persistent_recursive_watches.iter().cloned());
                }
                for p in &w.data_watches {
                    match self.nodes.get(p) {
                        None => fire.push((p.clone(), pb::EventType::NodeDeleted)),
                        Some(n) if n.mzxid > rel => {
                            fire.push((p.clone(), pb::EventType::NodeDataChanged))
                        }
                        _ => {}
                    }
                }
                for p in &w.exist_watches {
                    if self.nodes.contains_key(p) {
                        fire.push((p.clone(), pb::EventType::NodeCreated));
                    }
                }
                for (p, t) in fire {
                    let ev = pb::WatchEvent {
                        event_type: t as i32,
                        path: p.clone(),
                        zxid: self.zxid,
                    };
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.data.remove(&p);
                        s.exist.remove(&p);
                    }
                    self.send(sid, msg(server_message::Kind::Event(ev)));
                }
                resp.result = Some(R::Empty(pb::Empty {}));
            }
            _ => return fail(resp, Code::Unimplemented),
        }
        resp
    }
}

impl Fake {
    /// Starts the fake on a loopback port; returns it and its `host:port`.
    pub async fn start() -> (Fake, String) {
        let fake = Fake::default();
        fake.lock().nodes.insert("/".into(), Node::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let svc = ZooKeeperServer::new(fake.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (fake, addr.to_string())
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    /// Breaks the session's current connection (the stream ends).
    pub fn kill(&self, sid: i64) {
        if let Some(s) = self.lock().sessions.get_mut(&sid) {
            s.stream = None;
        }
    }

    /// Expires the session and breaks its connection; its watches are gone.
    pub fn expire(&self, sid: i64) {
        let mut st = self.lock();
        if let Some(s) = st.sessions.get_mut(&sid) {
            s.expired = true;
            s.stream = None;
        }
    }

    /// The ops the session sent, in order.
    pub fn ops(&self, sid: i64) -> Vec<(i64, &'static str)> {
        self.lock()
            .log
            .iter()
            .filter(|(s, _, _)| *s == sid)
            .map(|(_, x, o)| (*x, *o))
            .collect()
    }
}

#[tonic::async_trait]
impl ZooKeeper for Fake {
    type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::ServerMessage, Status>> + Send>>;

    async fn session(
        &self,
        request: Request<Streaming<pb::ClientMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let fake = self.clone();
        tokio::spawn(async move {
            let Ok(Some(pb::ClientMessage {
                kind: Some(client_message::Kind::Connect(c)),
            })) = inbound.message().await
            else {
                return;
            };
            let (sid, conn) = {
                let mut st = fake.lock();
                st.connects.push(c.clone());
                let sid = if c.session_id == 0 {
                    st.next_session += 1;
                    let sid = 0x1000 + st.next_session;
                    st.sessions.insert(
                        sid,
                        Sess {
                            password: Bytes::from(format!("pw{sid}")),
                            ..Default::default()
                        },
                    );
                    sid
                } else {
                    let alive = st
                        .sessions
                        .get(&c.session_id)
                        .is_some_and(|s| !s.expired && s.password == c.password);
                    if !alive {
                        let m = if st.expire_with_error {
                            server_message::Kind::Response(pb::Response {
                                err: Code::SessionExpired.as_i32(),
                                message: "session expired".into(),
                                ..Default::default()
                            })
                        } else {
                            server_message::Kind::Connected(pb::ConnectResponse::default())
                        };
                        let _ = tx.send(msg(m));
                        return;
                    }
                    c.session_id
                };
                st.next_conn += 1;
                let conn = st.next_conn;
                let zxid = st.zxid;
                let s = st.sessions.get_mut(&sid).expect("inserted");
                let connected = pb::ConnectResponse {
                    session_id: sid,
                    password: s.password.clone(),
                    timeout_ms: c.timeout_ms,
                    zxid,
                    server_id: 1,
                };
                let _ = tx.send(msg(server_message::Kind::Connected(connected)));
                s.stream = Some((conn, tx));
                (sid, conn)
            };
            while let Ok(Some(m)) = inbound.message().await {
                let mut st = fake.lock();
                let live = st
                    .sessions
                    .get(&sid)
                    .and_then(|s| s.stream.as_ref())
                    .is_some_and(|(c, _)| *c == conn);
                if !live {
                    break;
                }
                let Some(client_message::Kind::Request(r)) = m.kind else {
                    continue;
                };
                let Some(op) = r.op else { continue };
                st.log.push((sid, r.xid, op_name(&op)));
                if st.mute {
                    continue;
                }
                let close = matches!(op, Op::Close(_));
                let resp = st.handle(sid, r.xid, op);
                st.send(sid, msg(server_message::Kind::Response(resp)));
                if close && r.xid == CLOSE_XID {
                    st.sessions.remove(&sid);
                    let gone: Vec<String> = st
                        .nodes
                        .iter()
                        .filter(|(_, n)| n.owner == sid)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for p in gone {
                        st.nodes.remove(&p);
                    }
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }
}
