//! Building protocol responses: from apply results, tree reads and errors.

use zk_proto::pb::{self, response::Result as R, server_message::Kind, ServerMessage};
use zk_proto::Code;

use crate::tree::{ApplyResult, OpOutput, Stat, TreeError};

/// A protocol Stat from a tree Stat.
pub fn stat(s: &Stat) -> pb::Stat {
    pb::Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        data_length: s.data_length,
        num_children: s.num_children,
        pzxid: s.pzxid,
    }
}

/// Wraps a response for the outbound queue.
pub fn message(resp: pb::Response) -> ServerMessage {
    ServerMessage {
        kind: Some(Kind::Response(resp)),
    }
}

/// A successful response.
pub fn ok(xid: i64, zxid: i64, result: R) -> pb::Response {
    pb::Response {
        xid,
        zxid,
        err: 0,
        message: String::new(),
        result: Some(result),
    }
}

/// An error response.
pub fn error(xid: i64, zxid: i64, code: Code, message: impl Into<String>) -> pb::Response {
    pb::Response {
        xid,
        zxid,
        err: code.as_i32(),
        message: message.into(),
        result: None,
    }
}

/// An error response from a tree error.
pub fn tree_error(xid: i64, zxid: i64, e: &TreeError) -> pb::Response {
    error(xid, zxid, e.code(), e.message.clone())
}

fn op_output(o: &OpOutput) -> pb::op_result::Result {
    use pb::op_result::Result as O;
    match o {
        OpOutput::Created { path, stat: s } => O::Create(pb::CreateResponse {
            path: path.clone(),
            stat: Some(stat(s)),
        }),
        OpOutput::DataSet { stat: s } | OpOutput::AclSet { stat: s } => O::Stat(pb::StatResponse {
            stat: Some(stat(s)),
        }),
        OpOutput::Deleted | OpOutput::Checked => O::Empty(pb::Empty {}),
    }
}

/// The response to a write of `ops_len` ops, from what apply returned at `zxid`.
pub fn from_apply(xid: i64, zxid: i64, result: &ApplyResult, ops_len: usize) -> pb::Response {
    match result {
        ApplyResult::Op(Ok(o)) => {
            let r = match o {
                OpOutput::Created { path, stat: s } => R::Create(pb::CreateResponse {
                    path: path.clone(),
                    stat: Some(stat(s)),
                }),
                OpOutput::DataSet { stat: s } | OpOutput::AclSet { stat: s } => {
                    R::Stat(pb::StatResponse {
                        stat: Some(stat(s)),
                    })
                }
                OpOutput::Deleted | OpOutput::Checked => R::Empty(pb::Empty {}),
            };
            ok(xid, zxid, r)
        }
        ApplyResult::Op(Err(e)) => tree_error(xid, zxid, e),
        ApplyResult::Multi(Ok(outputs)) => ok(
            xid,
            zxid,
            R::Multi(pb::MultiResponse {
                results: outputs
                    .iter()
                    .map(|o| pb::OpResult {
                        err: 0,
                        result: Some(op_output(o)),
                    })
                    .collect(),
            }),
        ),
        ApplyResult::Multi(Err((index, e))) => pb::Response {
            xid,
            zxid,
            err: e.code,
            message: e.message.clone(),
            result: Some(R::Multi(multi_failure(*index, e.code, ops_len))),
        },
        ApplyResult::SessionClosed(Ok(())) => ok(xid, zxid, R::Empty(pb::Empty {})),
        ApplyResult::SessionClosed(Err(e)) => tree_error(xid, zxid, e),
        ApplyResult::SessionCreated { .. } | ApplyResult::Reaped(_) | ApplyResult::Nothing => {
            ok(xid, zxid, R::Empty(pb::Empty {}))
        }
    }
}

/// ZooKeeper's results for a failed multi of `len` ops (`usize::MAX` = unknown: then
/// the results stop at the failing op): OK before the failing op, its code at it,
/// RuntimeInconsistency after it.
pub fn multi_failure(index: usize, code: i32, len: usize) -> pb::MultiResponse {
    let n = if len == usize::MAX { index + 1 } else { len };
    pb::MultiResponse {
        results: (0..n)
            .map(|i| pb::OpResult {
                err: if i < index {
                    0
                } else if i == index {
                    code
                } else {
                    Code::RuntimeInconsistency.as_i32()
                },
                result: None,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_multi_follows_zookeeper() {
        let m = multi_failure(1, Code::BadVersion.as_i32(), 4);
        let codes: Vec<i32> = m.results.iter().map(|r| r.err).collect();
        assert_eq!(codes, vec![0, -103, -2, -2]);
    }

    #[test]
    fn op_error_carries_code_and_message() {
        let r = from_apply(
            7,
            9,
            &ApplyResult::Op(Err(TreeError::new(Code::NoNode, "delete /a: no node"))),
            1,
        );
        assert_eq!((r.xid, r.zxid, r.err), (7, 9, -101));
        assert!(r.message.contains("/a"));
    }
}
