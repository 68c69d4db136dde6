//! `multi` (atomic writes) and `multi_read` (batched reads): ops and results.

use bytes::Bytes;
use zk_proto::Code;

use crate::error::Error;
use crate::types::{CreateOptions, Stat};

/// One write of an atomic [`crate::Client::multi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node.
    Create {
        path: String,
        data: Bytes,
        options: CreateOptions,
    },
    /// Delete a node; `version: None` matches any version.
    Delete { path: String, version: Option<i32> },
    /// Replace a node's data; `version: None` matches any version.
    SetData {
        path: String,
        data: Bytes,
        version: Option<i32>,
    },
    /// Check that a node exists (with `version`, if given); writes nothing.
    Check { path: String, version: Option<i32> },
}

impl Op {
    /// [`Op::Create`].
    pub fn create(path: impl Into<String>, data: impl Into<Bytes>, options: CreateOptions) -> Op {
        Op::Create {
            path: path.into(),
            data: data.into(),
            options,
        }
    }

    /// [`Op::Delete`].
    pub fn delete(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.into(),
            version,
        }
    }

    /// [`Op::SetData`].
    pub fn set_data(path: impl Into<String>, data: impl Into<Bytes>, version: Option<i32>) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.into(),
            version,
        }
    }

    /// [`Op::Check`].
    pub fn check(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }

    /// The path the op works on.
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }
}

/// The result of one op of a successful `multi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The node was created at `path` (sequential suffix included, chroot stripped).
    Created { path: String, stat: Stat },
    /// The node was deleted.
    Deleted,
    /// The data was set.
    DataSet { stat: Stat },
    /// The check passed.
    Checked,
    /// A per-op error code (only inside a failed multi; a successful `multi` never
    /// returns it).
    Error(Code),
}

/// One read of a [`crate::Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadOp {
    /// Read a node's data.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

impl ReadOp {
    /// The path the op reads.
    pub fn path(&self) -> &str {
        match self {
            ReadOp::GetData(p) | ReadOp::GetChildren(p) => p,
        }
    }
}

/// The result of one read of a `multi_read`; each read succeeds or fails on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// The node's data.
    Data { data: Bytes, stat: Stat },
    /// The node's children (names, not paths).
    Children { children: Vec<String>, stat: Stat },
    /// The read failed with this code (e.g. `NoNode`).
    Error(Code),
}

/// Turns the per-op results of a multi into the call's result. `err` is the response's
/// overall code. On failure, the index is that of the first op whose code is neither
/// `Ok` nor `RuntimeInconsistency` (ZooKeeper marks the ops after the failing one with
/// `RuntimeInconsistency`); the per-op codes are returned as they came.
pub(crate) fn finish(err: Code, results: Vec<OpResult>) -> Result<Vec<OpResult>, Error> {
    let failed = results
        .iter()
        .any(|r| matches!(r, OpResult::Error(c) if !c.is_ok()));
    if err.is_ok() && !failed {
        return Ok(results);
    }
    let codes: Vec<Code> = results
        .iter()
        .map(|r| match r {
            OpResult::Error(c) => *c,
            _ => Code::Ok,
        })
        .collect();
    let index = codes
        .iter()
        .position(|c| !c.is_ok() && *c != Code::RuntimeInconsistency)
        .or_else(|| codes.iter().position(|c| !c.is_ok()))
        .unwrap_or(0);
    let code = codes
        .get(index)
        .copied()
        .filter(|c| !c.is_ok())
        .unwrap_or(err);
    Err(Error::Multi {
        index,
        code,
        results: codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_passes_results_through() {
        let results = vec![OpResult::Deleted, OpResult::Checked];
        assert_eq!(finish(Code::Ok, results.clone()), Ok(results));
    }

    #[test]
    fn failure_names_the_failing_op() {
        let results = vec![
            OpResult::Error(Code::Ok),
            OpResult::Error(Code::BadVersion),
            OpResult::Error(Code::RuntimeInconsistency),
        ];
        let e = finish(Code::BadVersion, results).expect_err("failed");
        assert_eq!(
            e,
            Error::Multi {
                index: 1,
                code: Code::BadVersion,
                results: vec![Code::Ok, Code::BadVersion, Code::RuntimeInconsistency],
            }
        );
    }

    #[test]
    fn failure_of_the_first_op_and_odd_shapes() {
        let e = finish(
            Code::NoNode,
            vec![
                OpResult::Error(Code::NoNode),
                OpResult::Error(Code::RuntimeInconsistency),
            ],
        )
        .expect_err("failed");
        assert!(matches!(
            e,
            Error::Multi {
                index: 0,
                code: Code::NoNode,
                ..
            }
        ));
        // Only RuntimeInconsistency reported: point at the first of them.
        let e = finish(
            Code::RuntimeInconsistency,
            vec![OpResult::Error(Code::RuntimeInconsistency)],
        )
        .expect_err("failed");
        assert!(matches!(
            e,
            Error::Multi {
                index: 0,
                code: Code::RuntimeInconsistency,
                ..
            }
        ));
        // An error result even though the overall code says OK.
        let e = finish(
            Code::Ok,
            vec![OpResult::Deleted, OpResult::Error(Code::NotEmpty)],
        )
        .expect_err("failed");
        assert!(matches!(
            e,
            Error::Multi {
                index: 1,
                code: Code::NotEmpty,
                ..
            }
        ));
    }

    #[test]
    fn helpers_build_ops() {
        let op = Op::create("/a", "x", CreateOptions::ephemeral());
        assert_eq!(op.path(), "/a");
        assert_eq!(
            Op::check("/b", Some(2)),
            Op::Check {
                path: "/b".into(),
                version: Some(2)
            }
        );
        assert_eq!(ReadOp::GetChildren("/c".into()).path(), "/c");
    }
}
