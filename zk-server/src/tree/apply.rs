//! One function per write op. Each validates everything before it changes anything, so
//! a failed op leaves the tree untouched; each successful change is recorded in the undo
//! log (for multi) and reported as [`TreeEvent`]s.

use bytes::Bytes;
use zk_proto::Code;

use super::multi::Undo;
use super::node::{Node, NodeKind};
use super::txn::{ChangeKind, CreateMode, OpOutput, TreeError, TreeEvent, TxnOp};
use super::{is_reserved, split_parent, DataTree};

/// What every op of one transaction shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct TxnCtx {
    /// The transaction's zxid (raft log index).
    pub zxid: i64,
    /// The session that sent it (owner of its ephemerals).
    pub session: i64,
    /// The leader's time stamp: ctime/mtime.
    pub time_ms: i64,
}

fn err(code: Code, op: &str, path: &str, what: impl std::fmt::Display) -> TreeError {
    TreeError::new(code, format!("{op} {path}: {what}"))
}

/// Path validation as a `BadArguments` naming the op.
fn validate(op: &str, path: &str, sequential: bool) -> Result<(), TreeError> {
    zk_proto::path::validate(path, sequential).map_err(|e| err(Code::BadArguments, op, path, e))
}

fn check_not_reserved(op: &str, path: &str, target: &str) -> Result<(), TreeError> {
    if is_reserved(target) {
        return Err(err(
            Code::BadArguments,
            op,
            path,
            "/zookeeper and below are reserved",
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
            } => self.create(ctx, path, data, *mode, *ttl_ms, undo, events),
            TxnOp::Delete { path, version } => self.delete(ctx, path, *version, undo, events),
            TxnOp::SetData {
                path,
                data,
                version,
            } => self.set_data(ctx, path, data, *version, undo, events),
            TxnOp::Check { path, version } => self.check(path, *version),
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
        mode: CreateMode,
        ttl_ms: i64,
        undo: &mut Vec<Undo>,
        events: &mut Vec<TreeEvent>,
    ) -> Result<OpOutput, TreeError> {
        const OP: &str = "create";
        let sequential = mode.is_sequential();
        validate(OP, path, sequential)?;
        let kind = NodeKind::for_create(mode, ctx.session, ttl_ms)
            .map_err(|m| err(Code::BadArguments, OP, path, m))?;
        check_data_len(OP, path, data)?;
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
        let actual = if sequential {
            format!("{path}{:010}", parent.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&actual) {
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
        let node = Node::created(data.clone(), kind, ctx.zxid, ctx.time_ms);
        let stat = node.stat();
        self.insert_node(actual.clone(), node);
        undo.push(Undo::Created {
            path: actual.clone(),
            parent_meta,
        });
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
            return Err(err(Code::BadArguments, OP, path, "the root cannot be deleted"));
        }
        check_not_reserved(OP, path, path)?;
        let node = self
            .nodes
            .get(path)
            .ok_or_else(|| err(Code::NoNode, OP, path, "no node"))?;
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
        undo.push(Undo::Deleted {
            path: path.to_string(),
            node,
            parent_meta,
        });
        events.push(event(path, ChangeKind::Deleted));
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
        check_version(OP, path, version, node.version)?;
        undo.push(Undo::DataSet {
            path: path.to_string(),
            data: std::mem::replace(&mut node.data, data.clone()),
            version: node.version,
            mzxid: node.mzxid,
            mtime: node.mtime,
        });
        node.version = node.version.wrapping_add(1);
        node.mzxid = ctx.zxid;
        node.mtime = ctx.time_ms;
        let stat = node.stat();
        events.push(event(path, ChangeKind::DataChanged));
        Ok(OpOutput::DataSet { stat })
    }

    /// Checks a node's existence and version; changes nothing.
    fn check(&self, path: &str, version: i32) -> Result<OpOutput, TreeError> {
        const OP: &str = "check";
        validate(OP, path, false)?;
        let node = self
            .nodes
            .get(path)
            .ok_or_else(|| err(Code::NoNode, OP, path, "no node"))?;
        check_version(OP, path, version, node.version)?;
        Ok(OpOutput::Checked)
    }
}
