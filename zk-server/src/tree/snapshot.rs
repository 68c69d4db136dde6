//! The snapshot byte format.
//!
//! `MAGIC (4) | format version u32 LE | crc32 of payload u32 LE | payload`, the payload
//! being a postcard-encoded [`SnapshotV2`] (version 2; version 1, without ACLs, still loads): the sessions, then every node in pre-order
//! (parent before child, children sorted), so equal trees give equal bytes. Loading
//! checks the checksum and the structure (root first, parents before children, no
//! duplicates, valid paths, ephemerals owned by open sessions and childless) and
//! rebuilds every index, so a loaded tree is as consistent as an applied one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zk_proto::Code;

use super::acl::{self, Acl};
use super::node::{Node, NodeKind, MAX_TTL_MS};
use super::txn::TreeError;
use super::{child_path, split_parent, DataTree, SessionInfo};

const MAGIC: &[u8; 4] = b"ZKDT";
/// Before ACLs: nodes without an ACL (loaded as `world:anyone` all).
const FORMAT_V1: u32 = 1;
/// Nodes carry their ACL.
const FORMAT_V2: u32 = 2;
const HEADER_LEN: usize = 12;

/// Version 1 of the snapshot payload (also DataTree's serde form).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SnapshotV2 {
    /// Open sessions by id.
    sessions: Vec<(i64, SessionInfo)>,
    /// Every node, root first, parents before children.
    nodes: Vec<NodeRecord>,
}

/// One node as stored: the fields a [`Node`] owns, minus its child set.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeRecord {
    path: String,
    data: Bytes,
    kind: NodeKind,
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    pzxid: i64,
    acl: Vec<Acl>,
}

/// [`NodeRecord`] borrowed from a live node (encodes identically).
#[derive(Serialize)]
struct NodeRecordRef<'a> {
    path: &'a str,
    data: RawBytes<'a>,
    kind: NodeKind,
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    pzxid: i64,
    acl: &'a [Acl],
}

impl<'a> NodeRecordRef<'a> {
    fn of(path: &'a str, n: &'a Node) -> NodeRecordRef<'a> {
        NodeRecordRef {
            path,
            data: RawBytes(&n.data),
            kind: n.kind,
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
            pzxid: n.pzxid,
            acl: &n.acl,
        }
    }
}

/// A value borrowed for writing, encoded as `Bytes` is (serde bytes, not a sequence).
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Version 1 of the payload: as version 2 without the nodes' ACLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotV1 {
    sessions: Vec<(i64, SessionInfo)>,
    nodes: Vec<NodeRecordV1>,
}

/// A node of a version 1 snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeRecordV1 {
    path: String,
    data: Bytes,
    kind: NodeKind,
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    pzxid: i64,
}

impl From<SnapshotV1> for SnapshotV2 {
    fn from(v1: SnapshotV1) -> SnapshotV2 {
        let nodes = v1
            .nodes
            .into_iter()
            .map(|n| NodeRecord {
                path: n.path,
                data: n.data,
                kind: n.kind,
                czxid: n.czxid,
                mzxid: n.mzxid,
                ctime: n.ctime,
                mtime: n.mtime,
                version: n.version,
                cversion: n.cversion,
                aversion: n.aversion,
                pzxid: n.pzxid,
                acl: acl::open(),
            })
            .collect();
        SnapshotV2 {
            sessions: v1.sessions,
            nodes,
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> TreeError {
    TreeError::new(
        Code::DataInconsistency,
        format!("corrupt tree snapshot: {what}"),
    )
}

/// Appends the postcard encoding of `value` to `out`; false if it does not encode.
fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> bool {
    match postcard::to_extend(value, std::mem::take(out)) {
        Ok(v) => {
            *out = v;
            true
        }
        Err(_) => false,
    }
}

/// Writes the payload's checksum into the header of `out` (empty if there is no payload
/// header).
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    if out.len() < HEADER_LEN {
        return Vec::new();
    }
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[8..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    out
}

impl From<DataTree> for SnapshotV2 {
    fn from(tree: DataTree) -> SnapshotV2 {
        SnapshotV2::of(&tree)
    }
}

impl SnapshotV2 {
    fn of(tree: &DataTree) -> SnapshotV2 {
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        let mut stack = vec!["/".to_string()];
        while let Some(path) = stack.pop() {
            let Some(n) = tree.nodes.get(path.as_str()) else {
                continue;
            };
            // Reverse so the smallest child is visited first.
            stack.extend(n.children.iter().rev().map(|c| child_path(&path, c)));
            nodes.push(NodeRecord {
                path,
                data: Bytes::copy_from_slice(&n.data),
                kind: n.kind,
                czxid: n.czxid,
                mzxid: n.mzxid,
                ctime: n.ctime,
                mtime: n.mtime,
                version: n.version,
                cversion: n.cversion,
                aversion: n.aversion,
                pzxid: n.pzxid,
                acl: n.acl.to_vec(),
            });
        }
        SnapshotV2 {
            sessions: tree.sessions(),
            nodes,
        }
    }
}

impl TryFrom<SnapshotV2> for DataTree {
    type Error = TreeError;

    fn try_from(snap: SnapshotV2) -> Result<DataTree, TreeError> {
        let mut tree = DataTree::empty();
        for (id, info) in snap.sessions {
            if tree.sessions.insert(id, info).is_some() {
                return Err(corrupt(format!("session {id:#x} twice")));
            }
        }
        let mut records = snap.nodes.into_iter();
        match records.next() {
            Some(root) if root.path == "/" && root.kind == NodeKind::Persistent => {
                tree.insert_node(root.path.clone(), root.into_node());
            }
            _ => return Err(corrupt("the first node is not a persistent root")),
        }
        for rec in records {
            check_record(&tree, &rec)?;
            tree.insert_node(rec.path.clone(), rec.into_node());
        }
        Ok(tree)
    }
}

/// Checks that `rec` can be added to `tree` as loaded so far.
fn check_record(tree: &DataTree, rec: &NodeRecord) -> Result<(), TreeError> {
    let path = &rec.path;
    zk_proto::path::validate(path, false).map_err(corrupt)?;
    if path == "/" || tree.nodes.contains_key(path.as_str()) {
        return Err(corrupt(format!("node {path} twice")));
    }
    let (parent, _) = split_parent(path);
    match tree.nodes.get(parent) {
        None => return Err(corrupt(format!("node {path} before its parent"))),
        Some(p) if p.is_ephemeral() => {
            return Err(corrupt(format!("node {path} under an ephemeral")));
        }
        Some(_) => {}
    }
    if rec.acl.is_empty() {
        return Err(corrupt(format!("node {path} without an ACL")));
    }
    match rec.kind {
        NodeKind::Ephemeral(s) if !tree.sessions.contains_key(&s) => Err(corrupt(format!(
            "ephemeral {path} of unknown session {s:#x}"
        ))),
        NodeKind::Ttl(ttl) if ttl <= 0 || ttl > MAX_TTL_MS => {
            Err(corrupt(format!("TTL node {path} with ttl {ttl}")))
        }
        _ if i32::try_from(rec.data.len()).is_err() => {
            Err(corrupt(format!("node {path} data too large")))
        }
        _ => Ok(()),
    }
}

impl NodeRecord {
    fn into_node(self) -> Node {
        let data = Vec::from(self.data).into_boxed_slice();
        let mut node = Node::created(data, self.kind, self.czxid, self.ctime);
        node.mzxid = self.mzxid;
        node.mtime = self.mtime;
        node.version = self.version;
        node.cversion = self.cversion;
        node.aversion = self.aversion;
        node.pzxid = self.pzxid;
        node.acl = self.acl.into();
        node
    }
}

impl DataTree {
    /// Serialises the whole tree and sessions table for a snapshot (versioned,
    /// checksummed; equal trees give equal bytes).
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        self.to_snapshot_bytes_sized(0)
    }

    /// [`DataTree::to_snapshot_bytes`] into a buffer of at least `capacity` bytes (the
    /// size of the previous snapshot: growing a buffer of hundreds of MiB by doubling
    /// copies it several times).
    pub fn to_snapshot_bytes_sized(&self, capacity: usize) -> Vec<u8> {
        // Streamed straight from the tree into the output buffer, in pre-order: each
        // node's record is encoded as the walk reaches it, from borrowed fields, into one
        // path buffer that grows and shrinks as the walk goes down and up — no list of
        // paths or records, no allocation per node. The bytes are those of `SnapshotV2`
        // (a postcard sequence is its length, then its elements).
        let mut out = Vec::with_capacity(capacity.max(HEADER_LEN + 64 * self.nodes.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_V2.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let sessions: Vec<(i64, &SessionInfo)> =
            self.sessions.iter().map(|(id, s)| (*id, s)).collect();
        // Serialising plain data into a Vec cannot fail; an empty payload would be
        // rejected on load rather than silently accepted.
        let ok = put(&mut out, &sessions) && put(&mut out, &self.nodes.len());
        let written = if ok { self.put_nodes(&mut out) } else { None };
        if written != Some(self.nodes.len()) {
            // Only if a node is unreachable from the root (the tree's invariants say
            // none is): the count written up front would be wrong.
            tracing::error!(
                nodes = self.nodes.len(),
                reachable = ?written,
                "tree with unreachable nodes; snapshot of the reachable ones"
            );
            return self.to_snapshot_bytes_reachable();
        }
        seal(out)
    }

    /// Encodes every node reachable from the root into `out`, in pre-order with children
    /// sorted; the number of nodes written (`None` if encoding failed).
    fn put_nodes(&self, out: &mut Vec<u8>) -> Option<usize> {
        let mut path = String::from("/");
        let root = self.nodes.get("/")?;
        if !put(out, &NodeRecordRef::of(&path, root)) {
            return None;
        }
        let mut written = 1;
        // (length of the parent's path, the parent's children not yet visited)
        let mut stack = vec![(path.len(), root.children.iter())];
        while let Some((base, children)) = stack.last_mut() {
            let Some(name) = children.next() else {
                stack.pop();
                continue;
            };
            let base = *base;
            path.truncate(base);
            if base > 1 {
                path.push('/');
            }
            path.push_str(name);
            let Some(n) = self.nodes.get(path.as_str()) else {
                continue;
            };
            if !put(out, &NodeRecordRef::of(&path, n)) {
                return None;
            }
            written += 1;
            if !n.children.is_empty() {
                stack.push((path.len(), n.children.iter()));
            }
        }
        Some(written)
    }

    /// The snapshot of the nodes reachable from the root, counted before encoding.
    fn to_snapshot_bytes_reachable(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_V2.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut counted = Vec::new();
        let Some(count) = self.put_nodes(&mut counted) else {
            return Vec::new();
        };
        let sessions: Vec<(i64, &SessionInfo)> =
            self.sessions.iter().map(|(id, s)| (*id, s)).collect();
        if !(put(&mut out, &sessions) && put(&mut out, &count)) {
            return Vec::new();
        }
        out.extend_from_slice(&counted);
        seal(out)
    }

    /// Rebuilds a tree from [`DataTree::to_snapshot_bytes`], all indexes included; a
    /// corrupt, truncated or unknown-version input is a `DataInconsistency` error.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<DataTree, TreeError> {
        let (header, payload) = bytes
            .split_at_checked(HEADER_LEN)
            .ok_or_else(|| corrupt("shorter than its header"))?;
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&header[i..i + 4]);
            u32::from_le_bytes(w)
        };
        if &header[..4] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let version = word(4);
        if version != FORMAT_V2 && version != FORMAT_V1 {
            return Err(corrupt(format!("unknown format version {version}")));
        }
        if crc32fast::hash(payload) != word(8) {
            return Err(corrupt("checksum mismatch"));
        }
        let (snap, rest): (SnapshotV2, &[u8]) = if version == FORMAT_V1 {
            let (v1, rest): (SnapshotV1, &[u8]) =
                postcard::take_from_bytes(payload).map_err(corrupt)?;
            (v1.into(), rest)
        } else {
            postcard::take_from_bytes(payload).map_err(corrupt)?
        };
        if !rest.is_empty() {
            return Err(corrupt(format!("{} trailing bytes", rest.len())));
        }
        DataTree::try_from(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::testkit::assert_same;
    use crate::tree::txn::{Command, CreateMode, TxnOp};

    fn txn(tree: &mut DataTree, zxid: i64, session: i64, op: TxnOp) {
        let cmd = Command::Txn {
            session,
            time_ms: 1000 + zxid,
            ops: vec![op],
            multi: false,
            auth: vec![],
        };
        let r = tree.apply(zxid, &cmd, &mut Vec::new());
        assert!(
            matches!(r, crate::tree::ApplyResult::Op(Ok(_))),
            "{cmd:?} -> {r:?}"
        );
    }

    fn create(path: &str, mode: CreateMode, ttl_ms: i64) -> TxnOp {
        TxnOp::Create {
            path: path.into(),
            data: Bytes::from(format!("data of {path}")),
            mode,
            ttl_ms,
            acl: crate::tree::acl::open(),
        }
    }

    /// A tree with sessions and every node kind.
    fn sample() -> DataTree {
        let mut t = DataTree::new();
        let mut ev = Vec::new();
        let pw = [7u8; 16];
        t.apply(
            1,
            &Command::CreateSession {
                timeout_ms: 5000,
                password: pw,
            },
            &mut ev,
        );
        t.apply(
            2,
            &Command::CreateSession {
                timeout_ms: 6000,
                password: pw,
            },
            &mut ev,
        );
        let (s1, s2) = (
            crate::tree::session_id_for(1),
            crate::tree::session_id_for(2),
        );
        txn(&mut t, 3, s1, create("/a", CreateMode::Persistent, 0));
        txn(&mut t, 4, s1, create("/a/e", CreateMode::Ephemeral, 0));
        txn(
            &mut t,
            5,
            s2,
            create("/a/q-", CreateMode::EphemeralSequential, 0),
        );
        txn(&mut t, 6, s1, create("/c", CreateMode::Container, 0));
        txn(&mut t, 7, s1, create("/c/x", CreateMode::Persistent, 0));
        txn(
            &mut t,
            8,
            s1,
            create("/t", CreateMode::PersistentWithTtl, 100),
        );
        txn(
            &mut t,
            9,
            s1,
            create("/t/", CreateMode::PersistentSequentialWithTtl, 200),
        );
        txn(
            &mut t,
            10,
            s1,
            create("/a/s", CreateMode::PersistentSequential, 0),
        );
        txn(
            &mut t,
            11,
            s1,
            TxnOp::SetData {
                path: "/a".into(),
                data: Bytes::from_static(b"v2"),
                version: 0,
            },
        );
        txn(
            &mut t,
            12,
            s1,
            TxnOp::Delete {
                path: "/c/x".into(),
                version: -1,
            },
        );
        t
    }

    #[test]
    fn round_trip_keeps_everything() {
        let t = sample();
        let bytes = t.to_snapshot_bytes();
        let back = DataTree::from_snapshot_bytes(&bytes).expect("loads");
        assert_same(&t, &back);
        assert_eq!(back.to_snapshot_bytes(), bytes, "deterministic");
        let s1 = crate::tree::session_id_for(1);
        assert_eq!(back.get_ephemerals(s1, "/"), vec!["/a/e".to_string()]);
        assert_eq!(
            back.reap_candidates(i64::MAX),
            vec!["/c".to_string(), "/t/0000000000".to_string()]
        );
        assert_eq!(back.sessions().len(), 2);
        let fresh = DataTree::new();
        assert_same(
            &fresh,
            &DataTree::from_snapshot_bytes(&fresh.to_snapshot_bytes()).expect("x"),
        );
    }

    #[test]
    fn borrowed_writer_encodes_exactly_the_owned_record() {
        let t = sample();
        let bytes = t.to_snapshot_bytes();
        let owned = postcard::to_allocvec(&SnapshotV2::of(&t)).expect("serialises");
        assert_eq!(&bytes[HEADER_LEN..], &owned[..]);
        assert_eq!(
            &bytes[8..HEADER_LEN],
            &crc32fast::hash(&owned).to_le_bytes()
        );
    }

    /// The owned-record encoding of `t` with its header, as the writer used to build it.
    fn owned_bytes(t: &DataTree) -> Vec<u8> {
        let owned = postcard::to_allocvec(&SnapshotV2::of(t)).expect("serialises");
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_V2.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&owned).to_le_bytes());
        out.extend_from_slice(&owned);
        out
    }

    #[test]
    fn streamed_writer_walks_deep_and_wide_trees_in_order() {
        let mut t = sample();
        let s1 = crate::tree::session_id_for(1);
        let long = "a-child-name-longer-than-twenty-four-bytes";
        let mut paths = vec![
            "/d".to_string(),
            "/d/b".into(),
            "/d/a".into(),
            "/d/a/x".into(),
            "/d/a/x/y".into(),
            format!("/d/a/x/y/{long}"),
            format!("/d/a/x/y/{long}/z"),
            "/d/c".into(),
            "/d/a0".into(),
        ];
        paths.extend((0..300).rev().map(|i| format!("/w/n{i}")));
        paths.insert(9, "/w".into());
        for (i, p) in paths.iter().enumerate() {
            txn(
                &mut t,
                100 + i as i64,
                s1,
                create(p, CreateMode::Persistent, 0),
            );
        }
        let expect = owned_bytes(&t);
        assert_eq!(t.to_snapshot_bytes(), expect);
        assert_eq!(t.to_snapshot_bytes_sized(expect.len() * 2), expect);
        assert_eq!(t.to_snapshot_bytes_sized(1), expect);
        let back = DataTree::from_snapshot_bytes(&expect).expect("loads");
        assert_same(&t, &back);
    }

    #[test]
    fn a_node_unreachable_from_the_root_is_left_out_consistently() {
        let mut t = sample();
        // A node whose parent does not list it (never produced by apply).
        t.nodes.insert(
            "/a/orphan".into(),
            Box::new(Node::created(Box::new([]), NodeKind::Persistent, 1, 1)),
        );
        let bytes = t.to_snapshot_bytes();
        assert_eq!(bytes, owned_bytes(&t));
        let back = DataTree::from_snapshot_bytes(&bytes).expect("loads");
        assert_same(&sample(), &back);
    }

    #[test]
    fn serde_goes_through_the_snapshot_record() {
        let t = sample();
        let bytes = postcard::to_allocvec(&t).expect("serialises");
        let back: DataTree = postcard::from_bytes(&bytes).expect("deserialises");
        assert_same(&t, &back);
    }

    #[test]
    fn truncated_or_flipped_bytes_never_panic() {
        let bytes = sample().to_snapshot_bytes();
        for len in 0..bytes.len() {
            assert!(
                DataTree::from_snapshot_bytes(&bytes[..len]).is_err(),
                "len {len}"
            );
        }
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                assert!(DataTree::from_snapshot_bytes(&b).is_err(), "byte {i}");
            }
        }
    }

    #[test]
    fn structurally_bad_payloads_are_errors_even_with_a_good_checksum() {
        let wrap = |snap: &SnapshotV2| {
            let payload = postcard::to_allocvec(snap).expect("x");
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&FORMAT_V2.to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            out.extend_from_slice(&payload);
            out
        };
        let good = SnapshotV2::of(&sample());
        assert!(DataTree::from_snapshot_bytes(&wrap(&good)).is_ok());

        let mut no_session = good.clone();
        no_session.sessions.clear();
        let mut orphan = good.clone();
        orphan.nodes.swap(1, 2);
        let mut dup = good.clone();
        let last = dup.nodes[dup.nodes.len() - 1].clone();
        dup.nodes.push(last);
        let mut no_root = good.clone();
        no_root.nodes.remove(0);
        let mut bad_path = good.clone();
        bad_path.nodes[1].path = "/a//b".into();
        let mut bad_ttl = good.clone();
        for n in &mut bad_ttl.nodes {
            if matches!(n.kind, NodeKind::Ttl(_)) {
                n.kind = NodeKind::Ttl(0);
            }
        }
        for bad in [no_session, orphan, dup, no_root, bad_path, bad_ttl] {
            let e = DataTree::from_snapshot_bytes(&wrap(&bad)).expect_err("rejected");
            assert_eq!(e.code(), Code::DataInconsistency);
        }

        let mut random = wrap(&good);
        // Garbage payload with a matching checksum: an error, not a panic.
        let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        random.truncate(HEADER_LEN);
        random[8..12].copy_from_slice(&crc32fast::hash(&garbage).to_le_bytes());
        random.extend_from_slice(&garbage);
        let _ = DataTree::from_snapshot_bytes(&random);
    }

    #[test]
    fn version_1_snapshots_load_with_open_acls() {
        let tree = sample();
        let v2 = SnapshotV2::of(&tree);
        let v1 = SnapshotV1 {
            sessions: v2.sessions.clone(),
            nodes: v2
                .nodes
                .iter()
                .map(|n| NodeRecordV1 {
                    path: n.path.clone(),
                    data: n.data.clone(),
                    kind: n.kind,
                    czxid: n.czxid,
                    mzxid: n.mzxid,
                    ctime: n.ctime,
                    mtime: n.mtime,
                    version: n.version,
                    cversion: n.cversion,
                    aversion: n.aversion,
                    pzxid: n.pzxid,
                })
                .collect(),
        };
        let payload = postcard::to_allocvec(&v1).expect("x");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_V1.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let loaded = DataTree::from_snapshot_bytes(&bytes).expect("v1 loads");
        assert_same(&loaded, &tree);
        assert_eq!(loaded.get_acl("/a").expect("a").0, acl::open().as_slice());
    }

    #[test]
    fn acls_round_trip() {
        let mut t = sample();
        let mut ev = Vec::new();
        let cmd = Command::Txn {
            session: 0,
            time_ms: 5,
            ops: vec![TxnOp::SetAcl {
                path: "/a".into(),
                acl: vec![Acl::new(acl::perms::READ, "ip", "10.0.0.0/8")],
                version: 0,
            }],
            multi: false,
            auth: vec![],
        };
        t.apply(100, &cmd, &mut ev);
        let back = DataTree::from_snapshot_bytes(&t.to_snapshot_bytes()).expect("loads");
        assert_eq!(
            back.get_acl("/a").expect("a").0,
            &[Acl::new(acl::perms::READ, "ip", "10.0.0.0/8")]
        );
        assert_eq!(back.get_acl("/a").expect("a").1.aversion, 1);
    }
}
