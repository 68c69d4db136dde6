//! One function per write op. Each validates everything before it changes anything, so
//! a failed op leaves the tree untouched; each successful change is recorded in the undo
//! log (for multi) and reported as [`TreeEvent`]s.

use bytes::Bytes;
use zk_proto::Code;

use super::acl::{self, perms, Acl, Id};
use super::multi::Undo;
use super::node::{Node, NodeKind};
use super::txn::{ChangeKind, CreateMode, OpOutput, TreeError, TreeEvent, TxnOp};
use super::{is_reserved, quota, split_parent, DataTree};

/// What every op of one transaction shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct TxnCtx<'a> {
    /// The transaction's zxid (raft log index).
    pub zxid: i64,
    /// The session that sent it (owner of its ephemerals).
    pub session: i64,
    /// The leader's time stamp: ctime/mtime.
    pub time_ms: i64,
    /// The sender's identities, for the ACL checks.
    pub auth: &'a [Id],
}

/// NoAuth for `op` on `path`.
pub(super) fn no_auth(op: &str, path: &str) -> TreeError {
    err(Code::NoAuth, op, path, "not authorised (ACL)")
}

/// NoAuth unless `ids` may do `perm` on a node with `acl`.
fn check_perm(
    op: &str,
    path: &str,
    node_acl: &[Acl],
    ids: &[Id],
    perm: i32,
) -> Result<(), TreeError> {
    if acl::allowed(node_acl, ids, perm) {
        Ok(())
    } else {
        Err(no_auth(op, path))
    }
}

/// The validated, `auth`-expanded ACL, or InvalidACL.
fn fixup(op: &str, path: &str, new: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, TreeError> {
    acl::fixup(new, ids).map_err(|m| err(Code::InvalidAcl, op, path, m))
}

fn err(code: Code, op: &str, path: &str, what: impl std::fmt::Display) -> TreeError {
    TreeError::new(code, format!("{op} {path}: {what}"))
}

/// Path validation as a `BadArguments` naming the op.
fn validate(op: &str, path: &str, sequential: bool) -> Result<(), TreeError> {
    zk_proto::path::validate(path, sequential).map_err(|e| err(Code::BadArguments, op, path, e))
}

fn check_not_reserved(op: &str, path: &str, target: &str) -> Result<(), TreeError> {
    if is_reserved(target) && !quota::is_quota_path(target) {
        return Err(err(
            Code::BadArguments,
            op,
            path,
            "/zookeeper and below are reserved (but for quota nodes below /zookeeper/quota)",
        ));
    }
    Ok(())
}

fn check_data_len(op: &str, path: &str, data: &Bytes) -> Result<(), TreeError> {
    if i32::try_from(data.len()).is_err() {
        return Err(err(
            Code::BadArguments,
            op,
            path,
            format!("data of {} bytes is too large", data.len()),
        ));
    }
    Ok(())
}

fn check_version(op: &str, path: &str, expected: i32, actual: i32) -> Result<(), TreeError> {
    if expected != -1 && expected != actual {
        return Err(err(
            Code::BadVersion,
            op,
            path,
            format!("version {expected} does not match {actual}"),
        ));
    }
    Ok(())
}

fn event(path: &str, kind: ChangeKind) -> TreeEvent {
    TreeEvent {
        path: path.to_string(),
        kind,
        acl: None,
    }
}

impl DataTree {
    /// Applies one op of a transaction; on error nothing changed.
    pub(super) fn apply_op(
        &mut self,
        ctx: &TxnCtx,
        op: &TxnOp,
        undo: &mut Vec<Undo>,
        events: &mut Vec<TreeEvent>,
    ) -> Result<OpOutput, TreeError> {
        match op {
            TxnOp::Create {
                path,
                data,
                mode,
                ttl_ms,
                acl,
            } => self.create(ctx, path, data, (*mode, *ttl_ms), acl, undo, events),
            TxnOp::Delete { path, version } => self.delete(ctx, path, *version, undo, events),
            TxnOp::SetData {
                path,
                data,
                version,
            } => self.set_data(ctx, path, data, *version, undo, events),
            TxnOp::Check { path, version } => self.check(ctx, path, *version),
            TxnOp::SetAcl { path, acl, version } => self.set_acl(ctx, path, acl, *version, undo),
        }
    }

    /// Creates a node (ZooKeeper's PrepRequestProcessor checks, then DataTree.createNode).
    /// A sequential path gets the parent's cversion before this create, `%010d`
    /// (negative after the i32 wraps, as in ZooKeeper).
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        ctx: &TxnCtx,
        path: &str,
        data: &Bytes,
        (mode, ttl_ms): (CreateMode, i64),
        new_acl: &[Acl],
        undo: &mut Vec<Undo>,
        events: &mut Vec<TreeEvent>,
    ) -> Result<OpOutput, TreeError> {
        const OP: &str = "create";
        let sequential = mode.is_sequential();
        validate(OP, path, sequential)?;
        let kind = NodeKind::for_create(mode, ctx.session, ttl_ms)
            .map_err(|m| err(Code::BadArguments, OP, path, m))?;
        check_data_len(OP, path, data)?;
        let new_acl = fixup(OP, path, new_acl, ctx.auth)?;
        if path == "/" && !sequential {
            return Err(err(Code::NodeExists, OP, path, "node already exists"));
        }
        let (parent_path, _) = split_parent(path);
        // A sequential node lands under `parent_path`; a plain one is `path` itself.
        check_not_reserved(OP, path, if sequential { parent_path } else { path })?;
        if let NodeKind::Ephemeral(session) = kind {
            if !self.sessions.contains_key(&session) {
                return Err(err(
                    Code::SessionExpired,
                    OP,
                    path,
                    format!("session {session:#x} is not open"),
                ));
            }
        }
        let Some(parent) = self.nodes.get(parent_path) else {
            return Err(err(
                Code::NoNode,
                OP,
                path,
                format!("no node at parent {parent_path}"),
            ));
        };
        check_perm(OP, path, &parent.acl, ctx.auth, perms::CREATE)?;
        let actual = if sequential {
            format!("{path}{:010}", parent.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(actual.as_str()) {
            return Err(err(Code::NodeExists, OP, &actual, "node already exists"));
        }
        if parent.is_ephemeral() {
            return Err(err(
                Code::NoChildrenForEphemerals,
                OP,
                path,
                format!("parent {parent_path} is ephemeral"),
            ));
        }
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return Err(err(Code::NoNode, OP, path, "parent vanished"));
        };
        let parent_meta = parent.child_meta();
        parent.touch_children(ctx.zxid);
        let mut node = Node::created(Box::from(&data[..]), kind, ctx.zxid, ctx.time_ms);
        node.acl = new_acl.into();
        let stat = node.stat();
        self.insert_node(actual.clone(), node);
        undo.push(Undo::Created {
            path: actual.clone(),
            parent_meta,
        });
        self.quota_created(&actual, data.len(), undo);
        events.push(event(&actual, ChangeKind::Created));
        events.push(event(parent_path, ChangeKind::ChildrenChanged));
        Ok(OpOutput::Created { path: actual, stat })
    }

    /// Deletes a childless node, checking its version.
    fn delete(
        &mut self,
        ctx: &TxnCtx,
        path: &str,
        version: i32,
        undo: &mut Vec<Undo>,
        events: &mut Vec<TreeEvent>,
    ) -> Result<OpOutput, TreeError> {
        const OP: &str = "delete";
        validate(OP, path, false)?;
        if path == "/" {
            return Err(err(
                Code::BadArguments,
                OP,
                path,
                "the root cannot be deleted",
            ));
        }
        check_not_reserved(OP, path, path)?;
        let node = self
            .nodes
            .get(path)
            .ok_or_else(|| err(Code::NoNode, OP, path, "no node"))?;
        let (parent_path, _) = split_parent(path);
        if let Some(parent) = self.nodes.get(parent_path) {
            check_perm(OP, path, &parent.acl, ctx.auth, perms::DELETE)?;
        }
        check_version(OP, path, version, node.version)?;
        if !node.children.is_empty() {
            return Err(err(Code::NotEmpty, OP, path, "node has children"));
        }
        self.remove_leaf(ctx.zxid, path, undo, events);
        Ok(OpOutput::Deleted)
    }

    /// Removes a childless non-root node with parent bookkeeping, undo and events; the
    /// checks are the caller's. Returns false (and changes nothing) if `path` is
    /// missing, the root, or has children.
    pub(super) fn remove_leaf(
        &mut self,
        zxid: i64,
        path: &str,
        undo: &mut Vec<Undo>,
        events: &mut Vec<TreeEvent>,
    ) -> bool {
        if path == "/" || !self.nodes.get(path).is_some_and(|n| n.children.is_empty()) {
            return false;
        }
        let (parent_path, _) = split_parent(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return false;
        };
        let parent_meta = parent.child_meta();
        parent.touch_children(zxid);
        let Some(node) = self.remove_node(path) else {
            return false;
        };
        let acl = node.acl.clone();
        let len = i64::try_from(node.data.len()).unwrap_or(i64::MAX);
        undo.push(Undo::Deleted {
            path: path.to_string(),
            node,
            parent_meta,
        });
        self.quota_account(path, -1, -len, undo);
        events.push(TreeEvent {
            acl: Some(acl),
            ..event(path, ChangeKind::Deleted)
        });
        events.push(event(parent_path, ChangeKind::ChildrenChanged));
        true
    }

    /// Replaces a node's data, checking its version.
    fn set_data(
        &mut self,
        ctx: &TxnCtx,
        path: &str,
        data: &Bytes,
        version: i32,
        undo: &mut Vec<Undo>,
        events: &mut Vec<TreeEvent>,
    ) -> Result<OpOutput, TreeError> {
        const OP: &str = "set_data";
        validate(OP, path, false)?;
        check_not_reserved(OP, path, path)?;
        check_data_len(OP, path, data)?;
        let node = self
            .nodes
            .get_mut(path)
            .ok_or_else(|| err(Code::NoNode, OP, path, "no node"))?;
        check_perm(OP, path, &node.acl, ctx.auth, perms::WRITE)?;
        if !crate::sim::injected(crate::sim::Bug::SetDataIgnoresVersion) {
            check_version(OP, path, version, node.version)?;
        }
        let old_len = node.data.len();
        undo.push(Undo::DataSet {
            path: path.to_string(),
            data: std::mem::replace(&mut node.data, Box::from(&data[..])),
            version: node.version,
            mzxid: node.mzxid,
            mtime: node.mtime,
        });
        node.version = node.version.wrapping_add(1);
        node.mzxid = ctx.zxid;
        node.mtime = ctx.time_ms;
        let stat = node.stat();
        let delta = i64::try_from(data.len()).unwrap_or(i64::MAX)
            - i64::try_from(old_len).unwrap_or(i64::MAX);
        self.quota_account(path, 0, delta, undo);
        events.push(event(path, ChangeKind::DataChanged));
        Ok(OpOutput::DataSet { stat })
    }

    /// Checks a node's existence and version; changes nothing.
    /// Needs READ, as ZooKeeper's check op.
    fn check(&self, ctx: &TxnCtx, path: &str, version: i32) -> Result<OpOutput, TreeError> {
        const OP: &str = "check";
        validate(OP, path, false)?;
        let node = self
            .nodes
            .get(path)
            .ok_or_else(|| err(Code::NoNode, OP, path, "no node"))?;
        check_perm(OP, path, &node.acl, ctx.auth, perms::READ)?;
        check_version(OP, path, version, node.version)?;
        Ok(OpOutput::Checked)
    }

    /// Replaces a node's ACL (ZooKeeper's order: InvalidACL, NoNode, NoAuth (ADMIN),
    /// BadVersion against aversion). aversion += 1; mzxid unchanged; no watch fires.
    fn set_acl(
        &mut self,
        ctx: &TxnCtx,
        path: &str,
        new_acl: &[Acl],
        version: i32,
        undo: &mut Vec<Undo>,
    ) -> Result<OpOutput, TreeError> {
        const OP: &str = "set_acl";
        validate(OP, path, false)?;
        let new_acl = self.acls.intern(&fixup(OP, path, new_acl, ctx.auth)?);
        let node = self
            .nodes
            .get_mut(path)
            .ok_or_else(|| err(Code::NoNode, OP, path, "no node"))?;
        check_perm(OP, path, &node.acl, ctx.auth, perms::ADMIN)?;
        check_version(OP, path, version, node.aversion)?;
        undo.push(Undo::AclSet {
            path: path.to_string(),
            acl: std::mem::replace(&mut node.acl, new_acl),
            aversion: node.aversion,
        });
        node.aversion = node.aversion.wrapping_add(1);
        Ok(OpOutput::AclSet { stat: node.stat() })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::{ApplyResult, ChangeKind, Command, CreateMode, OpOutput, TxnOp};
    use bytes::Bytes;
    use zk_proto::Code;

    fn created_path(out: OpOutput) -> String {
        match out {
            OpOutput::Created { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_stat_and_parent_bookkeeping() {
        let mut k = Kit::new();
        k.ok(create("/a", "", CreateMode::Persistent));
        let before = k.tree.exists("/a").expect("a");
        let out = k.ok(create("/a/b", "hello", CreateMode::Persistent));
        let z = k.zxid;
        let OpOutput::Created { path, stat } = out else {
            panic!()
        };
        assert_eq!(path, "/a/b");
        assert_eq!(stat, k.tree.exists("/a/b").expect("b"));
        assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (z, z, z));
        assert_eq!((stat.ctime, stat.mtime), (time_at(z), time_at(z)));
        assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
        assert_eq!(
            (stat.ephemeral_owner, stat.data_length, stat.num_children),
            (0, 5, 0)
        );
        let parent = k.tree.exists("/a").expect("a");
        assert_eq!(parent.cversion, before.cversion + 1);
        assert_eq!(parent.pzxid, z);
        assert_eq!(parent.num_children, 1);
        assert_eq!(
            (parent.mzxid, parent.mtime, parent.version),
            (before.mzxid, before.mtime, 0)
        );
        assert_eq!(
            k.events(),
            vec![
                ("/a/b".into(), ChangeKind::Created),
                ("/a".into(), ChangeKind::ChildrenChanged)
            ]
        );
        assert_eq!(
            k.tree.get_data("/a/b").expect("b").0,
            Bytes::from_static(b"hello")
        );
    }

    #[test]
    fn create_errors() {
        let mut k = Kit::new();
        let e = k
            .op(create("/a/b", "", CreateMode::Persistent))
            .expect_err("no parent");
        assert_eq!(e.code(), Code::NoNode);
        assert_eq!(e.message, "create /a/b: no node at parent /a");
        k.ok(create("/a", "", CreateMode::Persistent));
        let e = k
            .op(create("/a", "", CreateMode::Persistent))
            .expect_err("exists");
        assert_eq!(e.code(), Code::NodeExists);
        assert!(e.message.contains("/a"), "{e}");
        let e = k
            .op(create("/", "", CreateMode::Persistent))
            .expect_err("root");
        assert_eq!(e.code(), Code::NodeExists);
        for bad in ["a", "/a/", "//a", "/a/./b", "/a/../b", "", "/a\u{1}"] {
            let e = k
                .op(create(bad, "", CreateMode::Persistent))
                .expect_err(bad);
            assert_eq!(e.code(), Code::BadArguments, "{bad}");
            assert!(e.message.starts_with("create "), "{e}");
        }
        assert!(k.events.is_empty(), "no events for failures");
    }

    #[test]
    fn ephemerals_need_a_session_and_cannot_have_children() {
        let mut k = Kit::new();
        let e = k
            .op_as(99, create("/e", "", CreateMode::Ephemeral))
            .expect_err("no session");
        assert_eq!(e.code(), Code::SessionExpired);
        let s = k.session();
        let out = k
            .op_as(s, create("/e", "", CreateMode::Ephemeral))
            .expect("ok");
        let OpOutput::Created { stat, .. } = out else {
            panic!()
        };
        assert_eq!(stat.ephemeral_owner, s);
        let e = k
            .op_as(s, create("/e/c", "", CreateMode::Persistent))
            .expect_err("child");
        assert_eq!(e.code(), Code::NoChildrenForEphemerals);
        let e = k
            .op_as(s, create("/e/", "", CreateMode::PersistentSequential))
            .expect_err("seq");
        assert_eq!(e.code(), Code::NoChildrenForEphemerals);
        assert_eq!(k.tree.get_ephemerals(s, "/"), vec!["/e".to_string()]);
    }

    #[test]
    fn sequential_suffix_is_parent_cversion_before_increment() {
        let mut k = Kit::new();
        k.ok(create("/q", "", CreateMode::Persistent));
        let p = created_path(k.ok(create("/q/n-", "", CreateMode::PersistentSequential)));
        assert_eq!(p, "/q/n-0000000000");
        k.ok(create("/q/x", "", CreateMode::Persistent));
        k.ok(delete("/q/x", -1));
        // cversion is now 3: numbers are not reused after deletes, gaps appear.
        let p = created_path(k.ok(create("/q/", "", CreateMode::PersistentSequential)));
        assert_eq!(p, "/q/0000000003");
        assert_eq!(k.events()[0], ("/q/0000000003".into(), ChangeKind::Created));
        // The root's cversion is 0 on a fresh tree (as in ZooKeeper).
        let p = created_path(k.ok(create("/", "", CreateMode::PersistentSequential)));
        assert_eq!(p, "/0000000001");
        // A sequential create next to /zookeeper is not inside it.
        let p = created_path(k.ok(create("/zookeeper", "", CreateMode::PersistentSequential)));
        assert_eq!(p, "/zookeeper0000000002");
    }

    #[test]
    fn sequential_suffix_after_cversion_wraps() {
        let mut k = Kit::new();
        k.ok(create("/q", "", CreateMode::Persistent));
        if let Some(n) = k.tree.nodes.get_mut("/q") {
            n.cversion = i32::MAX;
        }
        let p = created_path(k.ok(create("/q/", "", CreateMode::PersistentSequential)));
        assert_eq!(p, "/q/2147483647");
        assert_eq!(k.tree.exists("/q").expect("q").cversion, i32::MIN);
        let p = created_path(k.ok(create("/q/", "", CreateMode::PersistentSequential)));
        assert_eq!(p, "/q/-2147483648", "as Java's %010d of a negative int");
    }

    #[test]
    fn node_kinds_encode_ephemeral_owner() {
        let mut k = Kit::new();
        let owner = |k: &mut Kit, op: TxnOp| match k.op(op) {
            Ok(OpOutput::Created { stat, .. }) => Ok(stat.ephemeral_owner),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.code()),
        };
        assert_eq!(
            owner(&mut k, create("/c", "", CreateMode::Container)),
            Ok(i64::MIN)
        );
        assert_eq!(
            owner(
                &mut k,
                create_ttl("/t", CreateMode::PersistentWithTtl, 5000)
            )
            .map(|o| o as u64),
            Ok(0xFF00_0000_0000_0000 | 5000)
        );
        let bad = [
            create_ttl("/t1", CreateMode::PersistentWithTtl, 0),
            create_ttl("/t2", CreateMode::PersistentWithTtl, -5),
            create_ttl(
                "/t3",
                CreateMode::PersistentSequentialWithTtl,
                0x100_0000_0000,
            ),
            create_ttl("/t4", CreateMode::Persistent, 10),
            create_ttl("/t5", CreateMode::Container, 10),
        ];
        for op in bad {
            assert_eq!(owner(&mut k, op), Err(Code::BadArguments));
        }
        assert!(owner(
            &mut k,
            create_ttl("/t6", CreateMode::PersistentWithTtl, 0xFF_FFFF_FFFF)
        )
        .is_ok());
    }

    #[test]
    fn reserved_paths_are_read_only() {
        let mut k = Kit::new();
        let ops = [
            create("/zookeeper", "", CreateMode::Persistent),
            create("/zookeeper/x", "", CreateMode::Persistent),
            create("/zookeeper/", "", CreateMode::PersistentSequential),
            create("/zookeeper/quota", "", CreateMode::Persistent),
            create("/zookeeper/config/x", "", CreateMode::Persistent),
            create("/zookeeper/quota/", "", CreateMode::PersistentSequential),
            delete("/zookeeper/config", -1),
            delete("/zookeeper", -1),
            delete("/", -1),
            set("/zookeeper", "x", -1),
            set("/zookeeper/quota", "x", -1),
        ];
        for op in ops {
            let desc = format!("{op:?}");
            let e = k.op(op).expect_err(&desc);
            assert_eq!(e.code(), Code::BadArguments, "{desc}");
            assert!(e.message.contains(" /"), "{e}");
        }
        assert_eq!(k.tree.node_count(), 4);
        k.ok(create("/zookeeperx", "", CreateMode::Persistent));
        k.ok(check("/zookeeper", 0));
    }

    #[test]
    fn delete_semantics() {
        let mut k = Kit::new();
        let e = k.op(delete("/x", -1)).expect_err("missing");
        assert_eq!(
            (e.code(), e.message.as_str()),
            (Code::NoNode, "delete /x: no node")
        );
        k.ok(create("/x", "", CreateMode::Persistent));
        k.ok(create("/x/y", "", CreateMode::Persistent));
        let e = k.op(delete("/x", -1)).expect_err("children");
        assert_eq!(
            (e.code(), e.message.as_str()),
            (Code::NotEmpty, "delete /x: node has children")
        );
        k.ok(set("/x/y", "1", 0));
        let e = k.op(delete("/x/y", 0)).expect_err("version");
        assert_eq!(e.code(), Code::BadVersion);
        assert_eq!(e.message, "delete /x/y: version 0 does not match 1");
        let before = k.tree.exists("/x").expect("x");
        assert_eq!(k.ok(delete("/x/y", 1)), OpOutput::Deleted);
        let after = k.tree.exists("/x").expect("x");
        assert_eq!(after.cversion, before.cversion + 1);
        assert_eq!(after.pzxid, k.zxid);
        assert_eq!(after.num_children, 0);
        assert_eq!(after.mzxid, before.mzxid);
        assert_eq!(
            k.events(),
            vec![
                ("/x/y".into(), ChangeKind::Deleted),
                ("/x".into(), ChangeKind::ChildrenChanged)
            ]
        );
        assert!(k.tree.exists("/x/y").is_none());
        k.ok(delete("/x", -1));
        assert_eq!(k.tree.node_count(), 4);
    }

    #[test]
    fn set_data_semantics() {
        let mut k = Kit::new();
        let e = k.op(set("/x", "d", -1)).expect_err("missing");
        assert_eq!(e.code(), Code::NoNode);
        k.ok(create("/x", "", CreateMode::Persistent));
        for _ in 0..5 {
            k.ok(set("/x", "d", -1));
        }
        let e = k.op(set("/x", "d", 3)).expect_err("version");
        assert_eq!(e.message, "set_data /x: version 3 does not match 5");
        assert_eq!(e.code(), Code::BadVersion);
        let out = k.ok(set("/x", "longer", 5));
        let z = k.zxid;
        let OpOutput::DataSet { stat } = out else {
            panic!()
        };
        assert_eq!(
            (stat.version, stat.mzxid, stat.mtime, stat.data_length),
            (6, z, time_at(z), 6)
        );
        assert_ne!(stat.czxid, z);
        assert_eq!(k.events(), vec![("/x".into(), ChangeKind::DataChanged)]);
        // Version wraps rather than panicking.
        if let Some(n) = k.tree.nodes.get_mut("/x") {
            n.version = i32::MAX;
        }
        let OpOutput::DataSet { stat } = k.ok(set("/x", "", i32::MAX)) else {
            panic!()
        };
        assert_eq!(stat.version, i32::MIN);
    }

    #[test]
    fn check_outside_multi_is_applied() {
        let mut k = Kit::new();
        assert_eq!(
            k.op(check("/nope", -1)).expect_err("x").code(),
            Code::NoNode
        );
        k.ok(create("/x", "", CreateMode::Persistent));
        assert_eq!(k.ok(check("/x", 0)), OpOutput::Checked);
        assert!(k.events.is_empty());
        assert_eq!(
            k.op(check("/x", 1)).expect_err("x").code(),
            Code::BadVersion
        );
    }

    #[test]
    fn single_txn_needs_exactly_one_op() {
        let mut k = Kit::new();
        for ops in [vec![], vec![check("/", -1), check("/", -1)]] {
            let r = k.apply(Command::Txn {
                session: 0,
                time_ms: 0,
                ops,
                multi: false,
                auth: vec![],
            });
            let ApplyResult::Op(Err(e)) = r else {
                panic!("{r:?}")
            };
            assert_eq!(e.code(), Code::BadArguments);
        }
    }
}
