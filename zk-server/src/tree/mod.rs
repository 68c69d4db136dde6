//! The replicated state: the znode tree and the sessions table. Pure, synchronous, no
//! I/O, no clock: `apply` is deterministic given (zxid, command), so every replica
//! computes the same tree and the same Stat.
//!
//! Layout: this file holds [`DataTree`], its indexes and the read methods; [`node`] the
//! znode and its Stat bookkeeping; `apply` one function per write op; `multi` the
//! all-or-nothing undo log; `sessions` session open/close and reaping; `snapshot` the
//! byte format.

pub mod acl;
mod apply;
mod multi;
pub mod node;
mod quota;
mod sessions;
mod snapshot;
pub mod txn;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod testkit;

pub use txn::{
    index_of, session_id_for, zxid_end, zxid_of, ApplyResult, Batch, ChangeKind, Command,
    CreateMode, OpOutput, Stat, TreeError, TreeEvent, TxnOp,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use bytes::Bytes;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use zk_proto::Code;

use node::{saturating_i32, Node, NodeKind};

/// A session as the replicated state knows it (liveness is tracked by the leader, not here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The negotiated session timeout.
    pub timeout_ms: u32,
    /// The session's password, checked when a client reattaches.
    pub password: [u8; 16],
}

/// The znode tree plus the sessions table.
///
/// Nodes are kept by full path; each node keeps its child names sorted. Small indexes
/// (per-session ephemerals, containers, TTL nodes) are kept in step by the only two
/// functions that add or remove nodes, so no operation scans the whole tree.
///
/// Serde (de)serialises through the snapshot record, so a deserialised tree has all its
/// indexes rebuilt and checked (serialising clones the tree first: prefer
/// [`DataTree::to_snapshot_bytes`], which does not).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "snapshot::SnapshotV2", try_from = "snapshot::SnapshotV2")]
pub struct DataTree {
    /// Every znode by full path, `/` included.
    /// (Boxed: a map slot is then a path and a pointer, and the table's spare
    /// capacity costs 32 bytes a slot instead of a whole node. Paths of up to 24 bytes
    /// are stored inline in the slot, without an allocation of their own.)
    nodes: HashMap<CompactString, Box<Node>>,
    /// Open sessions, ordered by id.
    sessions: BTreeMap<i64, SessionInfo>,
    /// Paths of each session's ephemeral nodes (no empty sets).
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Paths of all container nodes.
    containers: BTreeSet<String>,
    /// Paths of all TTL nodes.
    ttls: BTreeSet<String>,
    /// Shared ACL lists (see [`acl::AclCache`]).
    #[serde(skip)]
    acls: acl::AclCache,
}

/// The reserved subtree clients cannot write.
const ZOOKEEPER: &str = "/zookeeper";

/// True for `/zookeeper` and every path below it.
fn is_reserved(path: &str) -> bool {
    path.strip_prefix(ZOOKEEPER)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Splits a path into (parent, last segment): `/a/b` -> (`/a`, `b`), `/a` -> (`/`, `a`).
/// A sequential prefix ending in `/` gives an empty last segment.
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) | None => ("/", path.get(1..).unwrap_or("")),
        Some(i) => (&path[..i], &path[i + 1..]),
    }
}

/// `parent/name` without doubling the root's slash.
fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn no_node(path: &str) -> TreeError {
    TreeError::new(Code::NoNode, format!("no node at {path}"))
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`; no sessions.
    pub fn new() -> DataTree {
        let mut tree = DataTree::empty();
        for path in ["/", ZOOKEEPER, "/zookeeper/quota", "/zookeeper/config"] {
            tree.insert_node(
                path.to_string(),
                Node::created(Box::default(), NodeKind::Persistent, 0, 0),
            );
        }
        tree
    }

    /// A tree without even a root: the starting point of a snapshot load.
    fn empty() -> DataTree {
        DataTree {
            nodes: HashMap::new(),
            sessions: BTreeMap::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            acls: acl::AclCache::default(),
        }
    }

    /// Applies one committed command at `zxid`, appending what changed to `events` (in
    /// order). Never panics on any input: bad requests become `TreeError`s.
    pub fn apply(&mut self, zxid: i64, cmd: &Command, events: &mut Vec<TreeEvent>) -> ApplyResult {
        match cmd {
            Command::CreateSession {
                timeout_ms,
                password,
            } => self.create_session(zxid, *timeout_ms, *password),
            Command::CloseSession { session } => {
                ApplyResult::SessionClosed(self.close_session(zxid, *session, events))
            }
            Command::Txn {
                session,
                time_ms,
                ops,
                multi,
                auth,
            } => {
                let ctx = apply::TxnCtx {
                    zxid,
                    session: *session,
                    time_ms: *time_ms,
                    auth,
                };
                if *multi {
                    ApplyResult::Multi(self.apply_multi(&ctx, ops, events))
                } else {
                    match ops.as_slice() {
                        [op] => ApplyResult::Op(self.apply_op(&ctx, op, &mut Vec::new(), events)),
                        _ => ApplyResult::Op(Err(TreeError::new(
                            Code::BadArguments,
                            format!("a single-op txn needs exactly one op, got {}", ops.len()),
                        ))),
                    }
                }
            }
            Command::Reap { path, time_ms } => {
                ApplyResult::Reaped(self.reap(zxid, path, *time_ms, events))
            }
        }
    }

    /// Data and Stat of a node, or NoNode.
    pub fn get_data(&self, path: &str) -> Result<(Bytes, Stat), TreeError> {
        let node = self.nodes.get(path).ok_or_else(|| no_node(path))?;
        Ok((Bytes::copy_from_slice(&node.data), node.stat()))
    }

    /// [`DataTree::get_data`] after [`DataTree::check_acl`], with one lookup of `path`
    /// instead of two (the read path's hottest call).
    pub fn get_data_checked(
        &self,
        op: &str,
        path: &str,
        ids: &[acl::Id],
        perm: i32,
    ) -> Result<(Bytes, Stat), TreeError> {
        let node = self.nodes.get(path).ok_or_else(|| no_node(path))?;
        if !acl::allowed(&node.acl, ids, perm) {
            return Err(apply::no_auth(op, path));
        }
        Ok((Bytes::copy_from_slice(&node.data), node.stat()))
    }

    /// Stat of a node if it exists.
    pub fn exists(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(|n| n.stat())
    }

    /// The node's ACL and Stat, or NoNode.
    pub fn get_acl(&self, path: &str) -> Result<(&[acl::Acl], Stat), TreeError> {
        let node = self.nodes.get(path).ok_or_else(|| no_node(path))?;
        Ok((&node.acl, node.stat()))
    }

    /// NoNode if missing, NoAuth unless `ids` may do `perm` on the node at `path`.
    pub fn check_acl(
        &self,
        op: &str,
        path: &str,
        ids: &[acl::Id],
        perm: i32,
    ) -> Result<(), TreeError> {
        let node = self.nodes.get(path).ok_or_else(|| no_node(path))?;
        if acl::allowed(&node.acl, ids, perm) {
            Ok(())
        } else {
            Err(apply::no_auth(op, path))
        }
    }

    /// The ACL of the node at `path`, if it exists.
    pub fn node_acl(&self, path: &str) -> Option<&[acl::Acl]> {
        self.nodes.get(path).map(|n| &n.acl[..])
    }

    /// Child names (sorted) and the node's Stat, or NoNode.
    pub fn get_children(&self, path: &str) -> Result<(Vec<String>, Stat), TreeError> {
        let node = self.nodes.get(path).ok_or_else(|| no_node(path))?;
        Ok((
            node.children.iter().map(str::to_string).collect(),
            node.stat(),
        ))
    }

    /// Paths of the session's ephemeral nodes that start with `prefix` (sorted).
    pub fn get_ephemerals(&self, session: i64, prefix: &str) -> Vec<String> {
        let Some(paths) = self.ephemerals.get(&session) else {
            return Vec::new();
        };
        paths
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|p| p.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Number of all descendants of `path` (not counting itself), or NoNode.
    pub fn all_children_number(&self, path: &str) -> Result<i32, TreeError> {
        let node = self.nodes.get(path).ok_or_else(|| no_node(path))?;
        if path == "/" {
            return Ok(saturating_i32(self.nodes.len().saturating_sub(1)));
        }
        let mut count = 0usize;
        let mut stack: Vec<String> = node.children.iter().map(|c| child_path(path, c)).collect();
        while let Some(p) = stack.pop() {
            count += 1;
            if let Some(n) = self.nodes.get(p.as_str()) {
                stack.extend(n.children.iter().map(|c| child_path(&p, c)));
            }
        }
        Ok(saturating_i32(count))
    }

    /// The session, if open.
    pub fn session(&self, id: i64) -> Option<&SessionInfo> {
        self.sessions.get(&id)
    }

    /// All open sessions, ordered by id.
    pub fn sessions(&self) -> Vec<(i64, SessionInfo)> {
        self.sessions
            .iter()
            .map(|(id, info)| (*id, info.clone()))
            .collect()
    }

    /// Containers that had children and have none, and TTL nodes with no children not
    /// modified for their TTL as of `now_ms`: what the leader should `Reap`. Sorted;
    /// looks only at the container and TTL indexes.
    pub fn reap_candidates(&self, now_ms: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .containers
            .iter()
            .chain(self.ttls.iter())
            .filter(|p| {
                self.nodes
                    .get(p.as_str())
                    .is_some_and(|n| n.is_reapable(now_ms))
            })
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Number of znodes, the root and `/zookeeper` included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of ephemeral znodes (all sessions).
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Bytes of paths and values in the tree (ZooKeeper's `approximateDataSize`); walks
    /// every node, so for operator commands only.
    pub fn approximate_data_size(&self) -> usize {
        self.nodes.iter().map(|(p, n)| p.len() + n.data.len()).sum()
    }

    /// Adds `node` at `path` under its (existing) parent's child set and to the indexes.
    /// Parent Stat bookkeeping is the caller's. The only way nodes enter the tree.
    fn insert_node(&mut self, path: String, node: Node) {
        if path != "/" {
            let (parent, name) = split_parent(&path);
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.insert(name);
            }
        }
        match node.kind {
            NodeKind::Ephemeral(session) => {
                self.ephemerals
                    .entry(session)
                    .or_default()
                    .insert(path.clone());
            }
            NodeKind::Container => {
                self.containers.insert(path.clone());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
            NodeKind::Persistent => {}
        }
        let mut node = node;
        node.acl = self.acls.intern(&node.acl);
        self.nodes.insert(CompactString::from(path), Box::new(node));
    }

    /// Removes the node at `path` from the tree, its parent's child set and the indexes.
    /// Parent Stat bookkeeping is the caller's. The only way nodes leave the tree.
    fn remove_node(&mut self, path: &str) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        if path != "/" {
            let (parent, name) = split_parent(path);
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.remove(name);
            }
        }
        match node.kind {
            NodeKind::Ephemeral(session) => {
                if let Some(set) = self.ephemerals.get_mut(&session) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Persistent => {}
        }
        Some(*node)
    }
}

#[cfg(test)]
mod read_tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn fresh_tree() {
        let t = DataTree::default();
        assert_eq!(t.node_count(), 4);
        assert_eq!(t.get_children("/").expect("root").0, vec!["zookeeper"]);
        assert_eq!(
            t.get_children("/zookeeper").expect("zk").0,
            vec!["config", "quota"]
        );
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let s = t.exists(p).expect(p);
            assert_eq!(
                (s.czxid, s.mzxid, s.pzxid, s.ctime, s.ephemeral_owner),
                (0, 0, 0, 0, 0)
            );
        }
        assert_eq!(t.exists("/").expect("root").num_children, 1);
        assert!(t.sessions().is_empty());
        assert!(t.reap_candidates(i64::MAX).is_empty());
        let e = t.get_data("/nope").expect_err("missing");
        assert_eq!(e.code(), Code::NoNode);
        assert_eq!(t.get_children("/nope").expect_err("x").code(), Code::NoNode);
        assert!(t.exists("/nope").is_none());
    }

    #[test]
    fn all_children_number_counts_descendants() {
        let mut k = Kit::new();
        assert_eq!(k.tree.all_children_number("/"), Ok(3));
        k.ok(create("/a", "", CreateMode::Persistent));
        k.ok(create("/a/b", "", CreateMode::Persistent));
        k.ok(create("/a/b/c", "", CreateMode::Persistent));
        k.ok(create("/a/d", "", CreateMode::Persistent));
        k.ok(create("/ab", "", CreateMode::Persistent));
        assert_eq!(k.tree.all_children_number("/a"), Ok(3));
        assert_eq!(k.tree.all_children_number("/a/b"), Ok(1));
        assert_eq!(k.tree.all_children_number("/a/d"), Ok(0));
        assert_eq!(k.tree.all_children_number("/"), Ok(8));
        assert_eq!(k.tree.node_count(), 9);
        let e = k.tree.all_children_number("/x").expect_err("missing");
        assert_eq!(e.code(), Code::NoNode);
    }

    #[test]
    fn get_ephemerals_filters_by_prefix_and_session() {
        let mut k = Kit::new();
        let s = k.session();
        let t = k.session();
        k.ok(create("/a", "", CreateMode::Persistent));
        k.ok(create("/ab", "", CreateMode::Persistent));
        for p in ["/a/1", "/ab/2", "/e"] {
            k.op_as(s, create(p, "", CreateMode::Ephemeral)).expect(p);
        }
        k.op_as(t, create("/a/t", "", CreateMode::Ephemeral))
            .expect("t");
        assert_eq!(k.tree.get_ephemerals(s, ""), vec!["/a/1", "/ab/2", "/e"]);
        assert_eq!(k.tree.get_ephemerals(s, "/a"), vec!["/a/1", "/ab/2"]);
        assert_eq!(k.tree.get_ephemerals(s, "/a/"), vec!["/a/1"]);
        assert_eq!(k.tree.get_ephemerals(t, "/"), vec!["/a/t"]);
        assert!(k.tree.get_ephemerals(12345, "/").is_empty());
        k.ok(delete("/a/1", -1));
        assert_eq!(k.tree.get_ephemerals(s, "/a"), vec!["/ab/2"]);
    }

    #[test]
    fn tree_is_send_sync() {
        fn assert_send_sync<T: Send + Sync + Default + std::fmt::Debug>() {}
        assert_send_sync::<DataTree>();
    }
}
