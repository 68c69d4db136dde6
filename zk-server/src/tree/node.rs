//! One znode and its Stat bookkeeping.
//!
//! A node stores the Stat fields it owns; `data_length`, `num_children` and
//! `ephemeral_owner` are derived (from the data, the child set and the node kind), so
//! they can never disagree with what they describe.
//!
//! Sized for millions of nodes: the value is a boxed slice (no `Bytes` header), the
//! child set is allocated only for nodes that have children, child names of up to 24
//! bytes are stored inline, and the ACL is one thin shared pointer.

use std::collections::BTreeSet;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::acl::{self, AclList};
use super::txn::{CreateMode, Stat};

/// Apache ZooKeeper's `ephemeralOwner` of a container node (`0x8000000000000000`).
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// The high byte ZooKeeper sets in `ephemeralOwner` for extended types (TTL).
const EXTENDED_MASK: i64 = -0x0100_0000_0000_0000; // 0xFF00_0000_0000_0000

/// Largest TTL ZooKeeper accepts, in ms (40 bits).
pub const MAX_TTL_MS: i64 = 0xFF_FFFF_FFFF;

/// What kind of znode this is; determines `ephemeralOwner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A plain persistent node (`ephemeralOwner` 0).
    Persistent,
    /// An ephemeral node owned by a session.
    Ephemeral(i64),
    /// A container: reaped once it had children and has none.
    Container,
    /// A persistent node reaped once childless and unmodified for `ttl_ms`.
    Ttl(i64),
}

impl NodeKind {
    /// The kind a create with `mode` makes, or why `(mode, ttl_ms)` is invalid.
    pub fn for_create(mode: CreateMode, session: i64, ttl_ms: i64) -> Result<NodeKind, String> {
        if mode.is_ttl() {
            if ttl_ms <= 0 || ttl_ms > MAX_TTL_MS {
                return Err(format!(
                    "ttl {ttl_ms} must be positive and at most {MAX_TTL_MS}"
                ));
            }
            return Ok(NodeKind::Ttl(ttl_ms));
        }
        if ttl_ms != 0 {
            return Err(format!("ttl {ttl_ms} given for non-TTL mode {mode:?}"));
        }
        Ok(match mode {
            CreateMode::Ephemeral | CreateMode::EphemeralSequential => NodeKind::Ephemeral(session),
            CreateMode::Container => NodeKind::Container,
            _ => NodeKind::Persistent,
        })
    }

    /// ZooKeeper's `ephemeralOwner` encoding of this kind.
    pub fn ephemeral_owner(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(session) => session,
            NodeKind::Container => CONTAINER_EPHEMERAL_OWNER,
            NodeKind::Ttl(ttl) => EXTENDED_MASK | (ttl & MAX_TTL_MS),
        }
    }
}

/// A node's child names, sorted bytewise (as ZooKeeper lists them); nothing is
/// allocated while there are none (most nodes are leaves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// Boxed on purpose: 8 bytes in every node instead of a 24-byte empty set in each leaf.
#[allow(clippy::box_collection)]
pub struct Children(Option<Box<BTreeSet<CompactString>>>);

impl Children {
    /// Adds `name`; false if it was there.
    pub fn insert(&mut self, name: &str) -> bool {
        self.0
            .get_or_insert_with(Default::default)
            .insert(CompactString::from(name))
    }

    /// Removes `name`; false if it was not there. Frees the set when it empties.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(set) = self.0.as_mut() else {
            return false;
        };
        let removed = set.remove(name);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    /// True if `name` is a child.
    pub fn contains(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|s| s.contains(name))
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len())
    }

    /// True without children.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.0.iter().flat_map(|s| s.iter().map(|c| c.as_str()))
    }
}

/// One znode: data, kind, the Stat fields it owns and its child names (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's data.
    pub data: Box<[u8]>,
    /// Persistent, ephemeral, container or TTL.
    pub kind: NodeKind,
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last create or setData.
    pub mzxid: i64,
    /// Time of the create.
    pub ctime: i64,
    /// Time of the last create or setData.
    pub mtime: i64,
    /// Number of setData since the create (wrapping).
    pub version: i32,
    /// Number of child creates and deletes (wrapping).
    pub cversion: i32,
    /// Number of setACL.
    pub aversion: i32,
    /// Who may do what (ZooKeeper's ACL; `world:anyone` all by default).
    pub acl: AclList,
    /// zxid of the last child create or delete (or of the create).
    pub pzxid: i64,
    /// Child names, sorted.
    pub children: Children,
}

impl Node {
    /// A node as created at `zxid`, `time`.
    pub fn created(data: Box<[u8]>, kind: NodeKind, zxid: i64, time: i64) -> Node {
        Node {
            data,
            kind,
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl: acl::open_shared(),
            pzxid: zxid,
            children: Children::default(),
        }
    }

    /// The node's Stat as ZooKeeper shows it.
    pub fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.kind.ephemeral_owner(),
            data_length: saturating_i32(self.data.len()),
            num_children: saturating_i32(self.children.len()),
            pzxid: self.pzxid,
        }
    }

    /// The parent-side bookkeeping this node carries, for undo.
    pub fn child_meta(&self) -> ChildMeta {
        ChildMeta {
            cversion: self.cversion,
            pzxid: self.pzxid,
        }
    }

    /// Records a child create or delete at `zxid` (cversion += 1, pzxid = zxid).
    pub fn touch_children(&mut self, zxid: i64) {
        self.cversion = self.cversion.wrapping_add(1);
        self.pzxid = zxid;
    }

    /// Restores what [`Node::touch_children`] changed.
    pub fn restore_child_meta(&mut self, meta: ChildMeta) {
        self.cversion = meta.cversion;
        self.pzxid = meta.pzxid;
    }

    /// True for an ephemeral node.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self.kind, NodeKind::Ephemeral(_))
    }

    /// True if a reap at `now_ms` would delete this node: an empty container that had
    /// children, or a childless TTL node not modified for its TTL.
    pub fn is_reapable(&self, now_ms: i64) -> bool {
        if !self.children.is_empty() {
            return false;
        }
        match self.kind {
            NodeKind::Container => self.cversion > 0,
            NodeKind::Ttl(ttl) => self.mtime.saturating_add(ttl) <= now_ms,
            _ => false,
        }
    }
}

/// A parent's `cversion` and `pzxid`, saved before a child create or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildMeta {
    /// The parent's cversion before.
    pub cversion: i32,
    /// The parent's pzxid before.
    pub pzxid: i64,
}

/// `len` as an i32 Stat field, saturating (lengths are bounded far below at apply).
pub fn saturating_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_owner_encodings_match_zookeeper() {
        assert_eq!(NodeKind::Persistent.ephemeral_owner(), 0);
        assert_eq!(NodeKind::Ephemeral(42).ephemeral_owner(), 42);
        assert_eq!(
            NodeKind::Container.ephemeral_owner() as u64,
            0x8000_0000_0000_0000
        );
        assert_eq!(
            NodeKind::Ttl(1000).ephemeral_owner() as u64,
            0xFF00_0000_0000_0000 | 1000
        );
        assert_eq!(
            NodeKind::Ttl(MAX_TTL_MS).ephemeral_owner() as u64,
            0xFF00_00FF_FFFF_FFFF
        );
    }

    #[test]
    fn for_create_validates_ttl() {
        let ttl = CreateMode::PersistentWithTtl;
        assert_eq!(NodeKind::for_create(ttl, 1, 5), Ok(NodeKind::Ttl(5)));
        assert!(NodeKind::for_create(ttl, 1, 0).is_err());
        assert!(NodeKind::for_create(ttl, 1, -1).is_err());
        assert!(NodeKind::for_create(ttl, 1, MAX_TTL_MS + 1).is_err());
        assert!(
            NodeKind::for_create(CreateMode::PersistentSequentialWithTtl, 1, MAX_TTL_MS).is_ok()
        );
        assert!(NodeKind::for_create(CreateMode::Persistent, 1, 5).is_err());
        assert_eq!(
            NodeKind::for_create(CreateMode::EphemeralSequential, 7, 0),
            Ok(NodeKind::Ephemeral(7))
        );
        assert_eq!(
            NodeKind::for_create(CreateMode::Container, 7, 0),
            Ok(NodeKind::Container)
        );
        assert_eq!(
            NodeKind::for_create(CreateMode::PersistentSequential, 7, 0),
            Ok(NodeKind::Persistent)
        );
    }

    #[test]
    fn stat_and_reapability() {
        let mut n = Node::created(Box::from(&b"abc"[..]), NodeKind::Container, 5, 100);
        let s = n.stat();
        assert_eq!(
            (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime),
            (5, 5, 5, 100, 100)
        );
        assert_eq!((s.data_length, s.num_children, s.version), (3, 0, 0));
        assert!(
            !n.is_reapable(i64::MAX),
            "a container that never had children stays"
        );
        n.touch_children(6);
        assert!(n.is_reapable(0));
        n.children.insert("x");
        assert!(!n.is_reapable(0));

        let t = Node::created(Box::default(), NodeKind::Ttl(10), 1, 100);
        assert!(!t.is_reapable(109));
        assert!(t.is_reapable(110));
        let t = Node::created(Box::default(), NodeKind::Ttl(MAX_TTL_MS), 1, i64::MAX - 1);
        assert!(!t.is_reapable(i64::MAX - 1), "no overflow");
    }

    #[test]
    fn children_stay_sorted_and_free_their_set() {
        let mut c = Children::default();
        assert_eq!((c.is_empty(), c.len(), c.iter().next()), (true, 0, None));
        let long = "a-child-name-longer-than-twenty-four-bytes";
        for name in ["b", "a", long, "B", "a0", "é", "a"] {
            c.insert(name);
        }
        let got: Vec<&str> = c.iter().collect();
        assert_eq!(got, vec!["B", "a", long, "a0", "b", "é"], "bytewise order");
        assert_eq!(c.iter().next_back(), Some("é"));
        assert_eq!(c.len(), 6);
        assert!(c.contains(long) && !c.contains("c"));
        assert!(!c.remove("c"));
        for name in ["b", "a", long, "B", "a0", "é"] {
            assert!(c.remove(name), "{name}");
        }
        assert!(c.is_empty());
        assert_eq!(c, Children::default(), "the set is freed once empty");
    }

    #[test]
    fn node_stays_small() {
        // What a million znodes cost: keep the node within a 112-byte allocation.
        assert!(
            std::mem::size_of::<Node>() <= 104,
            "{}",
            std::mem::size_of::<Node>()
        );
    }
}
