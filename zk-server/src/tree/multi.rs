//! `multi`: all-or-nothing. Every change an op makes is recorded in an undo log; if a
//! later op fails, the log is replayed backwards, so the tree (Stats, child sets and
//! indexes included) is exactly as before and no events are emitted. No tree clone.

use bytes::Bytes;

use super::apply::TxnCtx;
use super::node::{ChildMeta, Node};
use super::txn::{OpOutput, TreeError, TreeEvent, TxnOp};
use super::{split_parent, DataTree};

/// One change to reverse.
#[derive(Debug)]
pub(super) enum Undo {
    /// A node was created at `path`; its parent's bookkeeping was `parent_meta`.
    Created { path: String, parent_meta: ChildMeta },
    /// `node` was removed from `path`; its parent's bookkeeping was `parent_meta`.
    Deleted {
        path: String,
        node: Node,
        parent_meta: ChildMeta,
    },
    /// The node at `path` had this data, version, mzxid and mtime.
    DataSet {
        path: String,
        data: Bytes,
        version: i32,
        mzxid: i64,
        mtime: i64,
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
                    if let Some(node) = self.nodes.get_mut(&path) {
                        node.data = data;
                        node.version = version;
                        node.mzxid = mzxid;
                        node.mtime = mtime;
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
