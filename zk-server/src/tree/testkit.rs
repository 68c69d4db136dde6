//! Test helpers: build commands and apply them tersely.

use bytes::Bytes;

use super::txn::{ApplyResult, Command, CreateMode, OpOutput, TreeError, TreeEvent, TxnOp};
use super::DataTree;

/// Time stamp used by [`Kit`] transactions at `zxid`.
pub fn time_at(zxid: i64) -> i64 {
    1_000_000 + zxid
}

/// A create op.
pub fn create(path: &str, data: &str, mode: CreateMode) -> TxnOp {
    TxnOp::Create {
        path: path.into(),
        data: Bytes::from(data.to_string()),
        mode,
        ttl_ms: 0,
        acl: crate::tree::acl::open(),
    }
}

/// A TTL create op.
pub fn create_ttl(path: &str, mode: CreateMode, ttl_ms: i64) -> TxnOp {
    TxnOp::Create {
        path: path.into(),
        data: Bytes::new(),
        mode,
        ttl_ms,
        acl: crate::tree::acl::open(),
    }
}

/// A delete op.
pub fn delete(path: &str, version: i32) -> TxnOp {
    TxnOp::Delete {
        path: path.into(),
        version,
    }
}

/// A set_data op.
pub fn set(path: &str, data: &str, version: i32) -> TxnOp {
    TxnOp::SetData {
        path: path.into(),
        data: Bytes::from(data.to_string()),
        version,
    }
}

/// A check op.
pub fn check(path: &str, version: i32) -> TxnOp {
    TxnOp::Check {
        path: path.into(),
        version,
    }
}

/// A tree plus a zxid counter and the events of the last command.
pub struct Kit {
    pub tree: DataTree,
    pub zxid: i64,
    pub events: Vec<TreeEvent>,
}

impl Kit {
    pub fn new() -> Kit {
        Kit {
            tree: DataTree::new(),
            zxid: 0,
            events: Vec::new(),
        }
    }

    /// Applies `cmd` at the next zxid; keeps its events.
    pub fn apply(&mut self, cmd: Command) -> ApplyResult {
        self.zxid += 1;
        self.events.clear();
        self.tree.apply(self.zxid, &cmd, &mut self.events)
    }

    /// Opens a session; returns its id.
    pub fn session(&mut self) -> i64 {
        match self.apply(Command::CreateSession {
            timeout_ms: 3000,
            password: [1; 16],
        }) {
            ApplyResult::SessionCreated { id, .. } => id,
            other => panic!("{other:?}"),
        }
    }

    /// A single op from session 0.
    pub fn op(&mut self, op: TxnOp) -> Result<OpOutput, TreeError> {
        self.op_as(0, op)
    }

    /// A single op from `session`.
    pub fn op_as(&mut self, session: i64, op: TxnOp) -> Result<OpOutput, TreeError> {
        let time_ms = time_at(self.zxid + 1);
        match self.apply(Command::Txn {
            session,
            time_ms,
            ops: vec![op],
            multi: false,
            auth: vec![],
        }) {
            ApplyResult::Op(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// A single op that must succeed.
    pub fn ok(&mut self, op: TxnOp) -> OpOutput {
        let desc = format!("{op:?}");
        self.op(op).unwrap_or_else(|e| panic!("{desc}: {e}"))
    }

    /// A multi from `session`.
    pub fn multi(
        &mut self,
        session: i64,
        ops: Vec<TxnOp>,
    ) -> Result<Vec<OpOutput>, (usize, TreeError)> {
        let time_ms = time_at(self.zxid + 1);
        match self.apply(Command::Txn {
            session,
            time_ms,
            ops,
            multi: true,
            auth: vec![],
        }) {
            ApplyResult::Multi(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// (path, kind) of the last command's events.
    pub fn events(&self) -> Vec<(String, super::ChangeKind)> {
        self.events
            .iter()
            .map(|e| (e.path.clone(), e.kind))
            .collect()
    }
}

/// Every piece of state of two trees (nodes, sessions, all indexes) is equal.
pub fn assert_same(a: &DataTree, b: &DataTree) {
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.sessions, b.sessions);
    assert_eq!(a.ephemerals, b.ephemerals);
    assert_eq!(a.containers, b.containers);
    assert_eq!(a.ttls, b.ttls);
}
