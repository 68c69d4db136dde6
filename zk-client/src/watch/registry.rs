//! The client's table of watches: path -> watchers, by kind. Owned by the session task
//! (no locks). Keys are server paths (chroot included); events handed out carry the
//! client path.
//!
//! Routing (ZooKeeper's rules):
//! - NodeCreated, NodeDataChanged, NodeDeleted resolve the path's data and exists watchers;
//! - NodeChildrenChanged and NodeDeleted resolve the path's child watchers;
//! - persistent watchers get every node event of their path and stay;
//! - recursive watchers get NodeCreated/NodeDeleted/NodeDataChanged of their path and
//!   every descendant (never NodeChildrenChanged) and stay;
//! - Data/ChildWatchRemoved resolve the watchers of that kind; PersistentWatchRemoved
//!   delivers to and ends the persistent and recursive watchers of the path.
//!
//! The server sends each event once per path and session; it goes to every matching
//! local watcher.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use zk_proto::{path, pb};

use crate::types::{EventType, SessionState, WatchedEvent, WatcherType};

/// A watch to register when the request carrying it succeeds. Created (with its
/// receiving half held by the caller) before the request is sent, so no event is lost.
#[derive(Debug)]
pub(crate) enum WatchRegistration {
    /// `get_data` watch.
    Data {
        path: String,
        tx: oneshot::Sender<WatchedEvent>,
    },
    /// `exists` watch: a data watch if the node exists, an exist watch if not.
    Exists {
        path: String,
        tx: oneshot::Sender<WatchedEvent>,
    },
    /// `get_children` watch.
    Child {
        path: String,
        tx: oneshot::Sender<WatchedEvent>,
    },
    /// `addWatch` persistent or persistent-recursive.
    Persistent {
        path: String,
        recursive: bool,
        id: u64,
        tx: mpsc::UnboundedSender<WatchedEvent>,
    },
    /// Not a registration: `remove_watches` succeeded, drop the local watchers too.
    Remove { path: String, kind: WatcherType },
}

#[derive(Debug)]
struct Sink {
    id: u64,
    tx: mpsc::UnboundedSender<WatchedEvent>,
}

type Oneshots = HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>;

/// path -> watchers, by kind.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    data: Oneshots,
    exist: Oneshots,
    child: Oneshots,
    persistent: HashMap<String, Vec<Sink>>,
    recursive: HashMap<String, Vec<Sink>>,
}

fn add_oneshot(map: &mut Oneshots, path: String, tx: oneshot::Sender<WatchedEvent>) {
    let list = map.entry(path).or_default();
    list.retain(|t| !t.is_closed());
    list.push(tx);
}

fn fire_oneshots(map: &mut Oneshots, path: &str, event: &WatchedEvent) -> usize {
    let mut n = 0;
    for tx in map.remove(path).unwrap_or_default() {
        if tx.send(event.clone()).is_ok() {
            n += 1;
        }
    }
    n
}

fn fire_sinks(map: &mut HashMap<String, Vec<Sink>>, path: &str, event: &WatchedEvent) -> usize {
    let mut n = 0;
    if let Some(list) = map.get_mut(path) {
        // A closed sink's owner sent (or will send) a removal; keep it until then.
        for sink in list.iter() {
            if sink.tx.send(event.clone()).is_ok() {
                n += 1;
            }
        }
    }
    n
}

fn live_keys(map: &mut Oneshots, only: Option<&str>) -> Vec<String> {
    map.retain(|_, list| {
        list.retain(|t| !t.is_closed());
        !list.is_empty()
    });
    let mut keys: Vec<String> = map
        .keys()
        .filter(|k| only.is_none_or(|o| o == k.as_str()))
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sink_keys(map: &HashMap<String, Vec<Sink>>, only: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = map
        .iter()
        .filter(|(k, list)| !list.is_empty() && only.is_none_or(|o| o == k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    keys
}

impl Registry {
    /// Registers a data watch.
    pub(crate) fn add_data(&mut self, path: String, tx: oneshot::Sender<WatchedEvent>) {
        add_oneshot(&mut self.data, path, tx);
    }

    /// Registers an exists watch on a missing node.
    pub(crate) fn add_exist(&mut self, path: String, tx: oneshot::Sender<WatchedEvent>) {
        add_oneshot(&mut self.exist, path, tx);
    }

    /// Registers a child watch.
    pub(crate) fn add_child(&mut self, path: String, tx: oneshot::Sender<WatchedEvent>) {
        add_oneshot(&mut self.child, path, tx);
    }

    /// Registers a persistent (or recursive) watcher.
    pub(crate) fn add_persistent(
        &mut self,
        path: String,
        recursive: bool,
        id: u64,
        tx: mpsc::UnboundedSender<WatchedEvent>,
    ) {
        let map = if recursive {
            &mut self.recursive
        } else {
            &mut self.persistent
        };
        map.entry(path).or_default().push(Sink { id, tx });
    }

    /// True when a persistent watcher of that mode is registered on `path`.
    pub(crate) fn has_persistent(&self, path: &str, recursive: bool) -> bool {
        let map = if recursive {
            &self.recursive
        } else {
            &self.persistent
        };
        map.get(path).is_some_and(|l| !l.is_empty())
    }

    /// Unregisters persistent watcher `id`; returns its path and mode if it was there.
    pub(crate) fn remove_persistent(&mut self, id: u64) -> Option<(String, bool)> {
        for (recursive, map) in [(false, &mut self.persistent), (true, &mut self.recursive)] {
            let found = map.iter_mut().find_map(|(path, list)| {
                list.iter()
                    .position(|s| s.id == id)
                    .map(|i| (path.clone(), i))
            });
            if let Some((path, i)) = found {
                if let Some(list) = map.get_mut(&path) {
                    list.remove(i);
                    if list.is_empty() {
                        map.remove(&path);
                    }
                }
                return Some((path, recursive));
            }
        }
        None
    }

    /// Delivers a node event for `server_path` to every matching watcher; returns how
    /// many received it.
    pub(crate) fn route(&mut self, server_path: &str, event: &WatchedEvent) -> usize {
        use EventType::*;
        let mut n = 0;
        let t = event.event_type;
        if matches!(
            t,
            NodeCreated | NodeDataChanged | NodeDeleted | DataWatchRemoved
        ) {
            n += fire_oneshots(&mut self.data, server_path, event);
            n += fire_oneshots(&mut self.exist, server_path, event);
        }
        if matches!(t, NodeChildrenChanged | NodeDeleted | ChildWatchRemoved) {
            n += fire_oneshots(&mut self.child, server_path, event);
        }
        if matches!(
            t,
            NodeCreated | NodeDataChanged | NodeDeleted | NodeChildrenChanged
        ) {
            n += fire_sinks(&mut self.persistent, server_path, event);
        }
        if matches!(t, NodeCreated | NodeDataChanged | NodeDeleted) {
            let mut at = Some(server_path);
            while let Some(p) = at {
                n += fire_sinks(&mut self.recursive, p, event);
                at = path::parent(p);
            }
        }
        if t == PersistentWatchRemoved {
            for map in [&mut self.persistent, &mut self.recursive] {
                for sink in map.remove(server_path).unwrap_or_default() {
                    if sink.tx.send(event.clone()).is_ok() {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// `remove_watches(path, kind)` succeeded: resolve and drop the local watchers of that
    /// kind, each with the matching `*WatchRemoved` event made by `event`.
    pub(crate) fn remove_local(
        &mut self,
        server_path: &str,
        kind: WatcherType,
        event: impl Fn(EventType) -> WatchedEvent,
    ) {
        if matches!(kind, WatcherType::Data | WatcherType::Any) {
            self.route(server_path, &event(EventType::DataWatchRemoved));
        }
        if matches!(kind, WatcherType::Children | WatcherType::Any) {
            self.route(server_path, &event(EventType::ChildWatchRemoved));
        }
        if kind == WatcherType::Any {
            self.route(server_path, &event(EventType::PersistentWatchRemoved));
        }
    }

    /// The watches to re-arm (all of them, or those of one path), dropping one-shot
    /// watchers nobody waits for any more. `relative_zxid` is left for the caller.
    pub(crate) fn set_watches(&mut self, only: Option<&str>) -> pb::SetWatchesRequest {
        pb::SetWatchesRequest {
            relative_zxid: 0,
            data_watches: live_keys(&mut self.data, only),
            exist_watches: live_keys(&mut self.exist, only),
            child_watches: live_keys(&mut self.child, only),
            persistent_watches: sink_keys(&self.persistent, only),
            persistent_recursive_watches: sink_keys(&self.recursive, only),
        }
    }

    /// Tells the persistent watchers about a (non-terminal) session state change.
    pub(crate) fn session_changed(&mut self, state: SessionState) {
        let event = WatchedEvent::session(state);
        for map in [&self.persistent, &self.recursive] {
            for sink in map.values().flatten() {
                let _ = sink.tx.send(event.clone());
            }
        }
    }

    /// The session ended: every watcher gets the terminal session event; persistent
    /// streams then end.
    pub(crate) fn terminate(&mut self, state: SessionState) {
        let event = WatchedEvent::session(state);
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            for tx in map.drain().flat_map(|(_, l)| l) {
                let _ = tx.send(event.clone());
            }
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            for sink in map.drain().flat_map(|(_, l)| l) {
                let _ = sink.tx.send(event.clone());
            }
        }
    }
}

/// True when a SetWatches request carries nothing.
pub(crate) fn is_empty(req: &pb::SetWatchesRequest) -> bool {
    req.data_watches.is_empty()
        && req.exist_watches.is_empty()
        && req.child_watches.is_empty()
        && req.persistent_watches.is_empty()
        && req.persistent_recursive_watches.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: EventType, p: &str) -> WatchedEvent {
        WatchedEvent {
            event_type: t,
            state: SessionState::Connected,
            path: p.to_string(),
            zxid: 1,
        }
    }

    struct Set {
        data: oneshot::Receiver<WatchedEvent>,
        exist: oneshot::Receiver<WatchedEvent>,
        child: oneshot::Receiver<WatchedEvent>,
    }

    fn oneshots(r: &mut Registry, p: &str) -> Set {
        let (d, data) = oneshot::channel();
        let (e, exist) = oneshot::channel();
        let (c, child) = oneshot::channel();
        r.add_data(p.into(), d);
        r.add_exist(p.into(), e);
        r.add_child(p.into(), c);
        Set { data, exist, child }
    }

    #[test]
    fn which_event_resolves_which_oneshot() {
        use EventType::*;
        // (event, data fires, exist fires, child fires)
        let table = [
            (NodeCreated, true, true, false),
            (NodeDataChanged, true, true, false),
            (NodeDeleted, true, true, true),
            (NodeChildrenChanged, false, false, true),
            (DataWatchRemoved, true, true, false),
            (ChildWatchRemoved, false, false, true),
            (PersistentWatchRemoved, false, false, false),
        ];
        for (t, d, e, c) in table {
            let mut r = Registry::default();
            let mut s = oneshots(&mut r, "/a");
            let _other = oneshots(&mut r, "/a/b");
            r.route("/a", &ev(t, "/a"));
            assert_eq!(s.data.try_recv().is_ok(), d, "{t:?} data");
            assert_eq!(s.exist.try_recv().is_ok(), e, "{t:?} exist");
            assert_eq!(s.child.try_recv().is_ok(), c, "{t:?} child");
            // Fired watches are gone: a second event reaches nobody.
            if d && c {
                assert_eq!(r.route("/a", &ev(t, "/a")), 0);
            }
        }
    }

    #[test]
    fn persistent_and_recursive_matching() {
        use EventType::*;
        let mut r = Registry::default();
        let (ptx, mut prx) = mpsc::unbounded_channel();
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let (root_tx, mut root_rx) = mpsc::unbounded_channel();
        r.add_persistent("/a".into(), false, 1, ptx);
        r.add_persistent("/a".into(), true, 2, rtx);
        r.add_persistent("/".into(), true, 3, root_tx);

        for t in [
            NodeCreated,
            NodeDataChanged,
            NodeChildrenChanged,
            NodeDeleted,
        ] {
            r.route("/a", &ev(t, "/a"));
            assert_eq!(prx.try_recv().map(|e| e.event_type), Ok(t));
            let recursive_gets = t != NodeChildrenChanged;
            assert_eq!(rrx.try_recv().is_ok(), recursive_gets, "{t:?}");
            assert_eq!(root_rx.try_recv().is_ok(), recursive_gets, "{t:?}");
        }
        // Descendants: only recursive watchers above them.
        r.route("/a/b/c", &ev(NodeCreated, "/a/b/c"));
        assert!(prx.try_recv().is_err());
        assert_eq!(rrx.try_recv().map(|e| e.path), Ok("/a/b/c".to_string()));
        assert!(root_rx.try_recv().is_ok());
        // A sibling with a common prefix is not a descendant.
        r.route("/ab", &ev(NodeCreated, "/ab"));
        assert!(rrx.try_recv().is_err());
        assert!(root_rx.try_recv().is_ok());
        // Persistent watchers stay after firing.
        assert!(r.has_persistent("/a", false) && r.has_persistent("/a", true));
        assert_eq!(r.remove_persistent(2), Some(("/a".to_string(), true)));
        assert!(!r.has_persistent("/a", true));
        assert_eq!(r.remove_persistent(2), None);
        // PersistentWatchRemoved ends the remaining persistent watcher of the path.
        r.route("/a", &ev(PersistentWatchRemoved, "/a"));
        assert_eq!(
            prx.try_recv().map(|e| e.event_type),
            Ok(PersistentWatchRemoved)
        );
        assert!(matches!(
            prx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn set_watches_lists_live_watches_only() {
        let mut r = Registry::default();
        let keep = oneshots(&mut r, "/a");
        let dropped = oneshots(&mut r, "/b");
        drop(dropped);
        let (ptx, _prx) = mpsc::unbounded_channel();
        r.add_persistent("/p".into(), true, 1, ptx);
        let req = r.set_watches(None);
        assert_eq!(req.data_watches, vec!["/a"]);
        assert_eq!(req.exist_watches, vec!["/a"]);
        assert_eq!(req.child_watches, vec!["/a"]);
        assert_eq!(req.persistent_recursive_watches, vec!["/p"]);
        assert!(req.persistent_watches.is_empty());
        assert!(is_empty(&r.set_watches(Some("/zzz"))));
        assert_eq!(
            r.set_watches(Some("/p")).persistent_recursive_watches,
            vec!["/p"]
        );
        drop(keep);
    }

    #[test]
    fn remove_local_and_terminate() {
        let mut r = Registry::default();
        let mut s = oneshots(&mut r, "/a");
        r.remove_local("/a", WatcherType::Data, |t| ev(t, "/a"));
        assert_eq!(
            s.data.try_recv().map(|e| e.event_type),
            Ok(EventType::DataWatchRemoved)
        );
        assert_eq!(
            s.exist.try_recv().map(|e| e.event_type),
            Ok(EventType::DataWatchRemoved)
        );
        assert!(s.child.try_recv().is_err());
        let (ptx, mut prx) = mpsc::unbounded_channel();
        r.add_persistent("/x".into(), false, 9, ptx);
        r.session_changed(SessionState::Disconnected);
        assert_eq!(
            prx.try_recv().map(|e| e.state),
            Ok(SessionState::Disconnected)
        );
        r.terminate(SessionState::Expired);
        let e = s.child.try_recv().expect("resolved");
        assert_eq!(
            (e.event_type, e.state),
            (EventType::Session, SessionState::Expired)
        );
        assert_eq!(prx.try_recv().map(|e| e.state), Ok(SessionState::Expired));
        assert!(matches!(
            prx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
