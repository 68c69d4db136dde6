//! Session open/close and server-initiated reaping of containers and TTL nodes.

use zk_proto::Code;

use super::txn::{session_id_for, ApplyResult, TreeError, TreeEvent};
use super::{DataTree, SessionInfo};

impl DataTree {
    /// Opens a session with id [`session_id_for`]`(zxid)`.
    pub(super) fn create_session(
        &mut self,
        zxid: i64,
        timeout_ms: u32,
        password: [u8; 16],
    ) -> ApplyResult {
        let id = session_id_for(zxid);
        self.sessions.insert(
            id,
            SessionInfo {
                timeout_ms,
                password,
            },
        );
        ApplyResult::SessionCreated {
            id,
            timeout_ms,
            password,
        }
    }

    /// Closes (or expires) a session: deletes its ephemerals in path order, with their
    /// events and parent bookkeeping, then forgets the session.
    pub(super) fn close_session(
        &mut self,
        zxid: i64,
        session: i64,
        events: &mut Vec<TreeEvent>,
    ) -> Result<(), TreeError> {
        if !self.sessions.contains_key(&session) {
            return Err(TreeError::new(
                Code::SessionExpired,
                format!("close_session {session:#x}: session is not open"),
            ));
        }
        let paths: Vec<String> = self
            .ephemerals
            .get(&session)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        let mut undo = Vec::new();
        for path in &paths {
            // Ephemerals never have children, so this always succeeds.
            self.remove_leaf(zxid, path, &mut undo, events);
        }
        self.sessions.remove(&session);
        Ok(())
    }

    /// Deletes `path` if, at `time_ms`, it is an empty container that had children or a
    /// childless TTL node not modified for its TTL. Returns whether it was deleted.
    pub(super) fn reap(
        &mut self,
        zxid: i64,
        path: &str,
        time_ms: i64,
        events: &mut Vec<TreeEvent>,
    ) -> bool {
        if !self.nodes.get(path).is_some_and(|n| n.is_reapable(time_ms)) {
            return false;
        }
        self.remove_leaf(zxid, path, &mut Vec::new(), events)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::{session_id_for, ApplyResult, ChangeKind, Command, CreateMode};
    use super::super::SessionInfo;
    use zk_proto::Code;

    #[test]
    fn create_session_uses_the_zxid() {
        let mut k = Kit::new();
        k.zxid = 41;
        let r = k.apply(Command::CreateSession {
            timeout_ms: 4000,
            password: [9; 16],
        });
        let id = session_id_for(42);
        assert_eq!(
            r,
            ApplyResult::SessionCreated {
                id,
                timeout_ms: 4000,
                password: [9; 16]
            }
        );
        let info = SessionInfo {
            timeout_ms: 4000,
            password: [9; 16],
        };
        assert_eq!(k.tree.session(id), Some(&info));
        assert_eq!(k.tree.sessions(), vec![(id, info)]);
        assert!(k.events.is_empty());
    }

    #[test]
    fn close_session_deletes_its_ephemerals_in_order() {
        let mut k = Kit::new();
        let s = k.session();
        let other = k.session();
        k.ok(create("/a", "", CreateMode::Persistent));
        k.op_as(s, create("/b", "", CreateMode::Ephemeral))
            .expect("b");
        k.op_as(s, create("/a/", "", CreateMode::EphemeralSequential))
            .expect("a/0");
        k.op_as(other, create("/a/o", "", CreateMode::Ephemeral))
            .expect("o");
        assert_eq!(k.tree.get_ephemerals(s, "/"), vec!["/a/0000000000", "/b"]);
        assert_eq!(k.tree.get_ephemerals(s, "/a"), vec!["/a/0000000000"]);
        assert_eq!(k.tree.get_ephemerals(s, "/c"), Vec::<String>::new());
        let a_before = k.tree.exists("/a").expect("a");

        let r = k.apply(Command::CloseSession { session: s });
        assert_eq!(r, ApplyResult::SessionClosed(Ok(())));
        use ChangeKind::*;
        let want: Vec<(String, ChangeKind)> = [
            ("/a/0000000000", Deleted),
            ("/a", ChildrenChanged),
            ("/b", Deleted),
            ("/", ChildrenChanged),
        ]
        .into_iter()
        .map(|(p, k)| (p.to_string(), k))
        .collect();
        assert_eq!(k.events(), want);
        let a = k.tree.exists("/a").expect("a");
        assert_eq!((a.cversion, a.pzxid), (a_before.cversion + 1, k.zxid));
        assert!(k.tree.session(s).is_none());
        assert!(k.tree.get_ephemerals(s, "/").is_empty());
        assert!(
            k.tree.exists("/a/o").is_some(),
            "other sessions' nodes stay"
        );

        let r = k.apply(Command::CloseSession { session: s });
        let ApplyResult::SessionClosed(Err(e)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(e.code(), Code::SessionExpired);
        assert!(k.events.is_empty());
        // A closed session cannot create ephemerals any more.
        let e = k
            .op_as(s, create("/late", "", CreateMode::Ephemeral))
            .expect_err("closed");
        assert_eq!(e.code(), Code::SessionExpired);
    }

    fn reap(k: &mut Kit, path: &str, time_ms: i64) -> bool {
        match k.apply(Command::Reap {
            path: path.into(),
            time_ms,
        }) {
            ApplyResult::Reaped(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn containers_are_reaped_once_emptied() {
        let mut k = Kit::new();
        k.ok(create("/p", "", CreateMode::Persistent));
        k.ok(create("/p/c", "", CreateMode::Container));
        assert!(
            k.tree.reap_candidates(i64::MAX).is_empty(),
            "never had children"
        );
        assert!(!reap(&mut k, "/p/c", i64::MAX));
        k.ok(create("/p/c/x", "", CreateMode::Persistent));
        assert!(k.tree.reap_candidates(i64::MAX).is_empty(), "has a child");
        assert!(!reap(&mut k, "/p/c", i64::MAX));
        assert!(k.events.is_empty());
        k.ok(delete("/p/c/x", -1));
        assert_eq!(k.tree.reap_candidates(0), vec!["/p/c"]);
        let p_before = k.tree.exists("/p").expect("p");
        assert!(reap(&mut k, "/p/c", 0));
        assert_eq!(
            k.events(),
            vec![
                ("/p/c".into(), ChangeKind::Deleted),
                ("/p".into(), ChangeKind::ChildrenChanged)
            ]
        );
        let p = k.tree.exists("/p").expect("p");
        assert_eq!(
            (p.cversion, p.pzxid, p.num_children),
            (p_before.cversion + 1, k.zxid, 0)
        );
        assert!(k.tree.reap_candidates(i64::MAX).is_empty());
        assert!(!reap(&mut k, "/p/c", 0), "already gone");
        assert!(!reap(&mut k, "/p", i64::MAX), "persistent");
        assert!(!reap(&mut k, "/", i64::MAX));
        assert!(!reap(&mut k, "not a path", 0));
    }

    #[test]
    fn ttl_nodes_are_reaped_when_idle_and_childless() {
        let mut k = Kit::new();
        k.ok(create_ttl("/t", CreateMode::PersistentWithTtl, 100));
        let mtime = k.tree.exists("/t").expect("t").mtime;
        assert!(k.tree.reap_candidates(mtime + 99).is_empty());
        assert_eq!(k.tree.reap_candidates(mtime + 100), vec!["/t"]);
        assert!(!reap(&mut k, "/t", mtime + 99));
        k.ok(set("/t", "touch", -1));
        let mtime = k.tree.exists("/t").expect("t").mtime;
        k.ok(create("/t/child", "", CreateMode::Persistent));
        assert!(k.tree.reap_candidates(i64::MAX).is_empty());
        assert!(!reap(&mut k, "/t", i64::MAX));
        k.ok(delete("/t/child", -1));
        assert!(reap(&mut k, "/t", mtime + 100));
        assert!(k.tree.exists("/t").is_none());
        assert!(k.tree.reap_candidates(i64::MAX).is_empty());
    }
}
