//! `multi`: all-or-nothing. Every change an op makes is recorded in an undo log; if a
//! later op fails, the log is replayed backwards, so the tree (Stats, child sets and
//! indexes included) is exactly as before and no events are emitted. No tree clone.

use super::acl::AclList;
use super::apply::TxnCtx;
use super::node::{ChildMeta, Node};
use super::txn::{OpOutput, TreeError, TreeEvent, TxnOp};
use super::{split_parent, DataTree};

/// One change to reverse.
#[derive(Debug)]
pub(super) enum Undo {
    /// A node was created at `path`; its parent's bookkeeping was `parent_meta`.
    Created {
        path: String,
        parent_meta: ChildMeta,
    },
    /// `node` was removed from `path`; its parent's bookkeeping was `parent_meta`.
    Deleted {
        path: String,
        node: Node,
        parent_meta: ChildMeta,
    },
    /// The node at `path` had this data, version, mzxid and mtime.
    DataSet {
        path: String,
        data: Box<[u8]>,
        version: i32,
        mzxid: i64,
        mtime: i64,
    },
    /// The node at `path` had this ACL and aversion.
    AclSet {
        path: String,
        acl: AclList,
        aversion: i32,
    },
}

impl DataTree {
    /// Applies `ops` in order, each seeing the earlier ones' effects. On the first
    /// failure (index `i`) everything is undone and `Err((i, error))` returned; on
    /// success the events of all ops are appended in order.
    pub(super) fn apply_multi(
        &mut self,
        ctx: &TxnCtx,
        ops: &[TxnOp],
        events: &mut Vec<TreeEvent>,
    ) -> Result<Vec<OpOutput>, (usize, TreeError)> {
        let mut undo = Vec::new();
        let mut pending = Vec::new();
        let mut outputs = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.apply_op(ctx, op, &mut undo, &mut pending) {
                Ok(out) => outputs.push(out),
                Err(e) => {
                    self.rollback(undo);
                    return Err((i, e));
                }
            }
        }
        events.append(&mut pending);
        Ok(outputs)
    }

    /// Reverses the changes in `undo`, last first.
    pub(super) fn rollback(&mut self, undo: Vec<Undo>) {
        for change in undo.into_iter().rev() {
            match change {
                Undo::Created { path, parent_meta } => {
                    self.remove_node(&path);
                    self.restore_parent(&path, parent_meta);
                }
                Undo::Deleted {
                    path,
                    node,
                    parent_meta,
                } => {
                    self.restore_parent(&path, parent_meta);
                    self.insert_node(path, node);
                }
                Undo::DataSet {
                    path,
                    data,
                    version,
                    mzxid,
                    mtime,
                } => {
                    if let Some(node) = self.nodes.get_mut(path.as_str()) {
                        node.data = data;
                        node.version = version;
                        node.mzxid = mzxid;
                        node.mtime = mtime;
                    }
                }
                Undo::AclSet {
                    path,
                    acl,
                    aversion,
                } => {
                    if let Some(node) = self.nodes.get_mut(path.as_str()) {
                        node.acl = acl;
                        node.aversion = aversion;
                    }
                }
            }
        }
    }

    fn restore_parent(&mut self, path: &str, meta: ChildMeta) {
        let (parent, _) = split_parent(path);
        if let Some(p) = self.nodes.get_mut(parent) {
            p.restore_child_meta(meta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::{ChangeKind, CreateMode, OpOutput};
    use zk_proto::Code;

    #[test]
    fn ops_see_earlier_ops_and_events_come_in_order() {
        let mut k = Kit::new();
        let s = k.session();
        let out = k
            .multi(
                s,
                vec![
                    create("/a", "", CreateMode::Persistent),
                    create("/a/b", "x", CreateMode::Persistent),
                    set("/a/b", "y", 0),
                    check("/a/b", 1),
                    create("/a/e", "", CreateMode::Ephemeral),
                    delete("/a/e", 0),
                    create("/a/", "", CreateMode::PersistentSequential),
                ],
            )
            .expect("multi");
        assert_eq!(out.len(), 7);
        assert!(matches!(&out[6], OpOutput::Created { path, .. } if path == "/a/0000000003"));
        assert_eq!(out[3], OpOutput::Checked);
        use ChangeKind::*;
        let want: Vec<(String, ChangeKind)> = [
            ("/a", Created),
            ("/", ChildrenChanged),
            ("/a/b", Created),
            ("/a", ChildrenChanged),
            ("/a/b", DataChanged),
            ("/a/e", Created),
            ("/a", ChildrenChanged),
            ("/a/e", Deleted),
            ("/a", ChildrenChanged),
            ("/a/0000000003", Created),
            ("/a", ChildrenChanged),
        ]
        .into_iter()
        .map(|(p, k)| (p.to_string(), k))
        .collect();
        assert_eq!(k.events(), want);
        assert!(k.tree.get_ephemerals(s, "/").is_empty());
        // All ops of one multi share the zxid.
        let z = k.zxid;
        let a = k.tree.exists("/a").expect("a");
        assert_eq!((a.czxid, a.pzxid, a.cversion, a.num_children), (z, z, 4, 2));
    }

    #[test]
    fn failure_changes_nothing_and_emits_nothing() {
        let mut k = Kit::new();
        let s = k.session();
        k.ok(create("/keep", "v", CreateMode::Persistent));
        k.ok(create("/keep/old", "", CreateMode::Persistent));
        k.op_as(s, create("/eph", "", CreateMode::Ephemeral))
            .expect("eph");
        k.ok(create("/c", "", CreateMode::Container));
        let before = k.tree.clone();
        let snap = k.tree.to_snapshot_bytes();
        let r = k.multi(
            s,
            vec![
                create("/n", "", CreateMode::Persistent),
                create("/n/m", "", CreateMode::Persistent),
                create("/n/e", "", CreateMode::Ephemeral),
                create("/c/x", "", CreateMode::Persistent),
                create_ttl("/t", CreateMode::PersistentWithTtl, 10),
                set("/keep", "changed", 0),
                set("/keep", "again", 1),
                delete("/keep/old", 0),
                delete("/eph", -1),
                delete("/c/x", -1),
                create("/keep/", "", CreateMode::PersistentSequential),
                check("/keep", 99),
                create("/never", "", CreateMode::Persistent),
            ],
        );
        let (i, e) = r.expect_err("fails at the check");
        assert_eq!(i, 11);
        assert_eq!(e.code(), Code::BadVersion);
        assert!(k.events.is_empty());
        assert_same(&before, &k.tree);
        assert_eq!(k.tree.to_snapshot_bytes(), snap);
        assert_eq!(k.tree.get_ephemerals(s, "/"), vec!["/eph".to_string()]);
        assert!(k.tree.reap_candidates(i64::MAX).is_empty());
    }

    #[test]
    fn failure_at_each_position_rolls_back() {
        let ops = || {
            vec![
                create("/a", "", CreateMode::Container),
                create("/a/b", "", CreateMode::Persistent),
                set("/a/b", "x", -1),
                delete("/a/b", -1),
                create("/a/", "", CreateMode::PersistentSequential),
            ]
        };
        for fail_at in 0..=5 {
            let mut k = Kit::new();
            k.ok(create("/z", "", CreateMode::Persistent));
            let before = k.tree.clone();
            let mut ops = ops();
            ops.insert(fail_at, check("/missing", -1));
            let (i, e) = k.multi(0, ops).expect_err("fails");
            assert_eq!((i, e.code()), (fail_at, Code::NoNode));
            assert_same(&before, &k.tree);
        }
    }

    #[test]
    fn empty_multi_succeeds() {
        let mut k = Kit::new();
        assert_eq!(k.multi(0, vec![]), Ok(vec![]));
        assert!(k.events.is_empty());
    }
}
