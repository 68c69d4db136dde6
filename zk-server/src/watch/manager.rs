//! Path -> watchers, per node (watches are not replicated: they belong to the sessions
//! connected to this server). `trigger` runs inside apply with the tree's write lock
//! held and pushes events onto the sessions' ordered outbound queues, so every event is
//! queued in zxid order and before any later reply.
//!
//! An event reaches a session only if that session's connection may READ the node the
//! event is about (ZooKeeper 3.8.4+/3.9.2+, CVE-2024-23944): a persistent recursive
//! watch on `/` does not reveal the children or changes of protected nodes below it.

use parking_lot::Mutex;
use zk_proto::pb::{server_message::Kind, EventType, ServerMessage, WatchEvent};

use crate::session::outbound::Outbound;
use crate::sim::{HashMap, HashSet};
use crate::tree::acl::{self, perms, Acl, Id};
use crate::tree::{ChangeKind, TreeEvent};

/// The kinds of watch a session can hold on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// One-shot, set by get_data or exists: fires on created / deleted / data changed.
    Data,
    /// One-shot, set by get_children: fires on children changed / deleted.
    Child,
    /// Stays: every event of the path, including children changed.
    Persistent,
    /// Stays: created / deleted / data changed of the path and all descendants.
    PersistentRecursive,
}

const KINDS: [WatchKind; 4] = [
    WatchKind::Data,
    WatchKind::Child,
    WatchKind::Persistent,
    WatchKind::PersistentRecursive,
];

#[derive(Default)]
struct Inner {
    /// kind -> path -> sessions.
    tables: HashMap<WatchKind, HashMap<String, HashSet<i64>>>,
    /// session -> (kind, path): to drop a session's watches when it detaches.
    by_session: HashMap<i64, HashSet<(WatchKind, String)>>,
    /// Connected sessions' outbound queues.
    sinks: HashMap<i64, Outbound>,
    /// Connected sessions' identities (ip, digest, x509, super): events need READ.
    identities: HashMap<i64, Vec<Id>>,
    /// Number of recursive registrations (skip the ancestor walk when zero).
    recursive: usize,
}

/// Watch registrations of one node.
#[derive(Default)]
pub struct WatchManager {
    inner: Mutex<Inner>,
    /// Most registrations one session may hold (`--max-watches-per-session`); 0 = no
    /// limit.
    limit: std::sync::atomic::AtomicUsize,
}

/// A watch was not registered: its session already holds the most it may.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "session {session:#x} already holds {held} watches on this server, the limit \
     (--max-watches-per-session {max}); remove some or let them fire"
)]
pub struct WatchLimitExceeded {
    /// The session.
    pub session: i64,
    /// Watches it holds.
    pub held: usize,
    /// The limit.
    pub max: usize,
}

impl WatchManager {
    /// No watches.
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// A session's connection is attached to this node: its events go to `out`.
    /// Returns the connection it replaces, if any (the caller closes it).
    pub fn attach(&self, session: i64, out: Outbound) -> Option<Outbound> {
        let mut inner = self.inner.lock();
        inner.identities.remove(&session);
        inner.sinks.insert(session, out)
    }

    /// The identities of the session's connection `out` (set after attach and after
    /// every `addauth`): its watch events are checked for READ with them. A no-op if
    /// the session has since attached another connection.
    pub fn set_identities(&self, session: i64, out: &Outbound, ids: &[Id]) {
        let mut inner = self.inner.lock();
        if inner.sinks.get(&session).is_some_and(|c| c.same(out)) {
            inner.identities.insert(session, ids.to_vec());
        }
    }

    /// Cuts off a session's connection (it expired or closed elsewhere).
    pub fn kill(&self, session: i64) {
        let out = self.inner.lock().sinks.get(&session).cloned();
        if let Some(out) = out {
            out.close();
            self.detach(session, &out);
        }
    }

    /// A session was closed or expired (applied on this node): cut its connection here,
    /// unless that connection asked for the close itself (it sends the reply, then ends).
    pub fn session_closed(&self, session: i64) {
        let out = self.inner.lock().sinks.get(&session).cloned();
        if let Some(out) = out {
            if !out.is_closing_session() {
                out.close();
                self.detach(session, &out);
            }
        }
    }

    /// Closes every connection (server shutdown).
    pub fn close_all(&self) {
        let sinks: Vec<Outbound> = self.inner.lock().sinks.values().cloned().collect();
        for out in sinks {
            out.close();
        }
    }

    /// Number of attached connections.
    pub fn connections(&self) -> usize {
        self.inner.lock().sinks.len()
    }

    /// A session's connection `out` went away: forget its queue and all its watches
    /// (the client re-arms them with setWatches when it reconnects). A no-op if the
    /// session has since attached another connection.
    pub fn detach(&self, session: i64, out: &Outbound) {
        let mut inner = self.inner.lock();
        match inner.sinks.get(&session) {
            Some(current) if current.same(out) => {}
            _ => return,
        }
        inner.sinks.remove(&session);
        inner.identities.remove(&session);
        if let Some(regs) = inner.by_session.remove(&session) {
            for (kind, path) in regs {
                inner.remove_one(kind, &path, session);
            }
        }
    }

    /// Sets the most watches one session may hold (0 = no limit). Registrations above
    /// a lowered limit stay until they fire or are removed.
    pub fn set_limit(&self, max: usize) {
        self.limit.store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// Registers a watch. Call with the tree lock held (read) right after the read the
    /// watch belongs to, so no change slips in between. A new registration beyond the
    /// session's limit is refused (one it already holds is not new, and passes).
    pub fn add(&self, session: i64, kind: WatchKind, path: &str) -> Result<(), WatchLimitExceeded> {
        let mut inner = self.inner.lock();
        let max = self.limit.load(std::sync::atomic::Ordering::Relaxed);
        if max != 0 {
            let held = inner.by_session.get(&session).map_or(0, |s| s.len());
            let already = inner
                .tables
                .get(&kind)
                .and_then(|t| t.get(path))
                .is_some_and(|s| s.contains(&session));
            if held >= max && !already {
                return Err(WatchLimitExceeded { session, held, max });
            }
        }
        let new = inner
            .tables
            .entry(kind)
            .or_default()
            .entry(path.to_string())
            .or_default()
            .insert(session);
        if new {
            if kind == WatchKind::PersistentRecursive {
                inner.recursive += 1;
            }
            inner
                .by_session
                .entry(session)
                .or_default()
                .insert((kind, path.to_string()));
        }
        Ok(())
    }

    /// Removes a session's watches of the given kinds on `path`; true if any existed.
    pub fn remove(&self, session: i64, path: &str, kinds: &[WatchKind]) -> bool {
        let mut inner = self.inner.lock();
        let mut any = false;
        for &kind in kinds {
            if inner.remove_one(kind, path, session) {
                any = true;
                if let Some(regs) = inner.by_session.get_mut(&session) {
                    regs.remove(&(kind, path.to_string()));
                }
            }
        }
        any
    }

    /// True if the session holds a watch of one of `kinds` on `path`.
    pub fn has(&self, session: i64, path: &str, kinds: &[WatchKind]) -> bool {
        let inner = self.inner.lock();
        kinds.iter().any(|k| {
            inner
                .tables
                .get(k)
                .and_then(|t| t.get(path))
                .is_some_and(|s| s.contains(&session))
        })
    }

    /// Total number of registrations (for metrics and tests).
    pub fn count(&self) -> usize {
        let inner = self.inner.lock();
        inner.by_session.values().map(|s| s.len()).sum()
    }

    /// (sessions with watches, distinct watched paths, registrations): `wchs`.
    pub fn summary(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        let paths: HashSet<&String> = inner
            .by_session
            .values()
            .flatten()
            .map(|(_, p)| p)
            .collect();
        let total = inner.by_session.values().map(|s| s.len()).sum();
        (inner.by_session.len(), paths.len(), total)
    }

    /// Fires the watches matching the changes of the transaction at `zxid`. Each session
    /// gets each (type, path) event once, however many of its watches match, and only
    /// if it may READ the event's node: `acl_of` looks a node's ACL up in the tree as
    /// applied; a deleted node's ACL travels in its event. A node found in neither (one
    /// created and deleted by the same multi without a later event) is shown to no one
    /// but the super user.
    pub fn trigger<'a>(
        &self,
        zxid: i64,
        events: &[TreeEvent],
        acl_of: impl Fn(&str) -> Option<&'a [Acl]>,
    ) {
        let mut inner = self.inner.lock();
        if inner.by_session.is_empty() {
            return;
        }
        for ev in events {
            let node_acl: &[Acl] = ev
                .acl
                .as_ref()
                .map(|a| a.as_slice())
                .or_else(|| acl_of(&ev.path))
                .or_else(|| {
                    events
                        .iter()
                        .find(|e| e.path == ev.path && e.acl.is_some())
                        .and_then(|e| e.acl.as_ref().map(|a| a.as_slice()))
                })
                .unwrap_or(NOBODY);
            let (event_type, one_shot): (EventType, &[WatchKind]) = match ev.kind {
                ChangeKind::Created => (EventType::NodeCreated, &[WatchKind::Data]),
                ChangeKind::Deleted => {
                    (EventType::NodeDeleted, &[WatchKind::Data, WatchKind::Child])
                }
                ChangeKind::DataChanged => (EventType::NodeDataChanged, &[WatchKind::Data]),
                ChangeKind::ChildrenChanged => {
                    (EventType::NodeChildrenChanged, &[WatchKind::Child])
                }
            };
            let mut targets: HashSet<i64> = HashSet::default();
            for &kind in one_shot {
                if let Some(sessions) = inner.tables.get_mut(&kind).and_then(|t| t.remove(&ev.path))
                {
                    for s in &sessions {
                        if let Some(regs) = inner.by_session.get_mut(s) {
                            regs.remove(&(kind, ev.path.clone()));
                        }
                    }
                    targets.extend(sessions);
                }
            }
            if let Some(s) = inner
                .tables
                .get(&WatchKind::Persistent)
                .and_then(|t| t.get(&ev.path))
            {
                targets.extend(s.iter().copied());
            }
            if ev.kind != ChangeKind::ChildrenChanged && inner.recursive > 0 {
                if let Some(table) = inner.tables.get(&WatchKind::PersistentRecursive) {
                    let mut p = ev.path.as_str();
                    loop {
                        if let Some(s) = table.get(p) {
                            targets.extend(s.iter().copied());
                        }
                        match zk_proto::path::parent(p) {
                            Some(parent) => p = parent,
                            None => break,
                        }
                    }
                }
            }
            for session in targets {
                let ids = inner.identities.get(&session).map(Vec::as_slice);
                if !acl::allowed(node_acl, ids.unwrap_or_default(), perms::READ) {
                    continue;
                }
                if let Some(out) = inner.sinks.get(&session) {
                    out.push(event_message(event_type, &ev.path, zxid));
                }
            }
        }
        inner.by_session.retain(|_, regs| !regs.is_empty());
    }

    /// All (kind, path) registrations of a session (for tests and setWatches).
    pub fn of_session(&self, session: i64) -> Vec<(WatchKind, String)> {
        let inner = self.inner.lock();
        let mut v: Vec<_> = inner
            .by_session
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// Queues a message on a connected session's outbound queue (used for setWatches'
    /// immediate events).
    pub fn push_to(&self, session: i64, msg: ServerMessage) {
        if let Some(out) = self.inner.lock().sinks.get(&session) {
            out.push(msg);
        }
    }

    /// All watch kinds.
    pub fn all_kinds() -> &'static [WatchKind] {
        &KINDS
    }
}

impl Inner {
    fn remove_one(&mut self, kind: WatchKind, path: &str, session: i64) -> bool {
        let Some(table) = self.tables.get_mut(&kind) else {
            return false;
        };
        let Some(set) = table.get_mut(path) else {
            return false;
        };
        let removed = set.remove(&session);
        if set.is_empty() {
            table.remove(path);
        }
        if removed && kind == WatchKind::PersistentRecursive {
            self.recursive = self.recursive.saturating_sub(1);
        }
        removed
    }
}

/// An ACL no one matches (only the super user passes): for events whose node's ACL is
/// unknown. Not empty, as an empty ACL lets everyone in.
const NOBODY: &[Acl] = &[Acl {
    perms: 0,
    scheme: String::new(),
    id: String::new(),
}];

/// A watch event message.
pub fn event_message(event_type: EventType, path: &str, zxid: i64) -> ServerMessage {
    ServerMessage {
        kind: Some(Kind::Event(WatchEvent {
            event_type: event_type as i32,
            path: path.to_string(),
            zxid,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn ev(path: &str, kind: ChangeKind) -> TreeEvent {
        TreeEvent {
            path: path.into(),
            kind,
            acl: None,
        }
    }

    /// Every node open to everyone.
    fn open(_: &str) -> Option<&'static [Acl]> {
        static OPEN: std::sync::OnceLock<Vec<Acl>> = std::sync::OnceLock::new();
        Some(OPEN.get_or_init(acl::open).as_slice())
    }

    async fn drain(out: &Outbound) -> Vec<(i32, String)> {
        out.close();
        out.stream()
            .filter_map(|m| async move {
                match m.kind {
                    Some(Kind::Event(e)) => Some((e.event_type, e.path)),
                    _ => None,
                }
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn one_shot_fires_once_persistent_stays() {
        let m = WatchManager::new();
        let out = Outbound::new(100);
        m.attach(7, out.clone());
        m.add(7, WatchKind::Data, "/a").unwrap();
        m.add(7, WatchKind::Persistent, "/a").unwrap();
        m.trigger(5, &[ev("/a", ChangeKind::DataChanged)], open);
        m.trigger(6, &[ev("/a", ChangeKind::DataChanged)], open);
        let got = drain(&out).await;
        // Two changes: one event each (the data watch and the persistent watch share one).
        assert_eq!(got.len(), 2);
        assert!(!m.has(7, "/a", &[WatchKind::Data]));
        assert!(m.has(7, "/a", &[WatchKind::Persistent]));
    }

    #[tokio::test]
    async fn child_and_recursive_rules() {
        let m = WatchManager::new();
        let out = Outbound::new(100);
        m.attach(1, out.clone());
        m.add(1, WatchKind::Child, "/p").unwrap();
        m.add(1, WatchKind::PersistentRecursive, "/p").unwrap();
        m.trigger(
            3,
            &[
                ev("/p/c", ChangeKind::Created),
                ev("/p", ChangeKind::ChildrenChanged),
            ],
            open,
        );
        let got = drain(&out).await;
        assert_eq!(
            got,
            vec![
                (EventType::NodeCreated as i32, "/p/c".to_string()),
                (EventType::NodeChildrenChanged as i32, "/p".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn events_need_read_on_their_node() {
        let m = WatchManager::new();
        let (alice, other) = (Outbound::new(100), Outbound::new(100));
        let alice_id = Id::new("digest", "alice:h");
        m.attach(1, alice.clone());
        m.set_identities(1, &alice, std::slice::from_ref(&alice_id));
        m.attach(2, other.clone());
        m.set_identities(2, &other, &[Id::new("ip", "127.0.0.1")]);
        for s in [1, 2] {
            m.add(s, WatchKind::PersistentRecursive, "/").unwrap();
        }
        let private = vec![Acl::new(perms::ALL, "digest", "alice:h")];
        // "/vanished" is in no tree (created and deleted by one multi): no one sees it.
        let acl_of = |p: &str| match p {
            "/secret" | "/secret/c" => Some(private.as_slice()),
            "/public" => open(p),
            _ => None,
        };
        let deleted = TreeEvent {
            acl: Some(private.clone().into()),
            ..ev("/secret/gone", ChangeKind::Deleted)
        };
        let events = [
            ev("/secret/c", ChangeKind::Created),
            ev("/public", ChangeKind::DataChanged),
            deleted,
            ev("/vanished", ChangeKind::Created),
        ];
        m.trigger(9, &events, acl_of);
        let paths = |v: Vec<(i32, String)>| v.into_iter().map(|(_, p)| p).collect::<Vec<_>>();
        assert_eq!(
            paths(drain(&alice).await),
            vec!["/secret/c", "/public", "/secret/gone"]
        );
        assert_eq!(paths(drain(&other).await), vec!["/public"]);
    }

    #[test]
    fn the_per_session_limit_refuses_new_watches_only() {
        let m = WatchManager::new();
        m.set_limit(2);
        m.add(1, WatchKind::Data, "/a").unwrap();
        m.add(1, WatchKind::Child, "/a").unwrap();
        let err = m.add(1, WatchKind::Data, "/b").unwrap_err();
        assert_eq!((err.held, err.max), (2, 2));
        assert!(
            err.to_string().contains("--max-watches-per-session"),
            "{err}"
        );
        m.add(1, WatchKind::Data, "/a").unwrap(); // already held: not new
        m.add(2, WatchKind::Data, "/b").unwrap(); // another session is unaffected
        assert!(m.remove(1, "/a", &[WatchKind::Data]));
        m.add(1, WatchKind::Data, "/b").unwrap(); // room again
        m.set_limit(0);
        for i in 0..10 {
            m.add(1, WatchKind::Data, &format!("/n{i}")).unwrap();
        }
    }

    #[test]
    fn detach_drops_watches_of_that_connection_only() {
        let m = WatchManager::new();
        let a = Outbound::new(10);
        let b = Outbound::new(10);
        m.attach(1, a.clone());
        m.add(1, WatchKind::Data, "/x").unwrap();
        m.attach(1, b.clone());
        m.detach(1, &a);
        assert!(m.has(1, "/x", &[WatchKind::Data]));
        m.detach(1, &b);
        assert!(!m.has(1, "/x", &[WatchKind::Data]));
        assert_eq!(m.count(), 0);
    }
}
