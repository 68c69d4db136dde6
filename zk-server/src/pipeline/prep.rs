//! First stage: validate a request and classify it. A write becomes a [`Command`]
//! stamped with the leader's time; obviously bad requests (invalid path, oversized
//! value, unknown mode, bad TTL) are rejected here, before reaching the log. Apply
//! checks everything again, deterministically.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use zk_proto::pb::{self, request::Op as ReqOp};
use zk_proto::{path, Code};

use super::reply;
use super::Prepared;
use crate::tree::acl::{self, Acl};
use crate::tree::{Command, CreateMode, TxnOp};

/// Wall-clock ms since the Unix epoch (ctime/mtime stamps).
pub fn now_ms() -> i64 {
    if let Some(sim) = crate::sim::now_since_epoch() {
        return sim.as_millis() as i64;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Why prep refused an op: code and message.
type Refusal = (Code, String);

fn check_path(op: &str, p: &str, sequential: bool) -> Result<(), Refusal> {
    path::validate(p, sequential).map_err(|e| (Code::BadArguments, format!("{op}: {e}")))
}

fn check_data(op: &str, p: &str, data: &Bytes, max: usize) -> Result<(), Refusal> {
    if data.len() > max {
        return Err((
            Code::BadArguments,
            format!(
                "{op} {p}: value of {} bytes exceeds the limit of {max} bytes (--max-data-bytes)",
                data.len()
            ),
        ));
    }
    Ok(())
}

/// A protocol ACL as the tree's.
pub fn acl_from_pb(acl: &[pb::Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| Acl::new(a.perms, a.scheme.clone(), a.id.clone()))
        .collect()
}

/// An ACL list is stored with its node: bound it like a value (`--max-data-bytes`), so
/// ACLs cannot be used to store more than a value could.
fn check_acl_size(op: &str, p: &str, acl: &[pb::Acl], max: usize) -> Result<(), Refusal> {
    let bytes: usize = acl.iter().map(|a| 4 + a.scheme.len() + a.id.len()).sum();
    if bytes > max {
        return Err((
            Code::BadArguments,
            format!("{op} {p}: an ACL of {bytes} bytes exceeds the limit of {max} bytes"),
        ));
    }
    Ok(())
}

fn create_op(c: &pb::CreateRequest, max: usize) -> Result<TxnOp, Refusal> {
    let mode = CreateMode::from_i32(c.mode).ok_or_else(|| {
        (
            Code::BadArguments,
            format!("create {}: unknown create mode {}", c.path, c.mode),
        )
    })?;
    check_path("create", &c.path, mode.is_sequential())?;
    check_data("create", &c.path, &c.data, max)?;
    check_acl_size("create", &c.path, &c.acl, max)?;
    if mode.is_ttl() && (c.ttl_ms <= 0 || c.ttl_ms > 0xFF_FFFF_FFFF) {
        return Err((
            Code::BadArguments,
            format!(
                "create {}: TTL must be between 1 and {} ms, got {}",
                c.path, 0xFF_FFFF_FFFF_i64, c.ttl_ms
            ),
        ));
    }
    if !mode.is_ttl() && c.ttl_ms != 0 {
        return Err((
            Code::BadArguments,
            format!(
                "create {}: a TTL is only valid for TTL create modes",
                c.path
            ),
        ));
    }
    Ok(TxnOp::Create {
        path: c.path.clone(),
        // An own copy: the request's bytes are a slice of the connection's receive
        // buffer, which the tree would otherwise keep alive for the node's lifetime.
        data: Bytes::copy_from_slice(&c.data),
        mode,
        ttl_ms: c.ttl_ms,
        acl: if c.acl.is_empty() {
            acl::open()
        } else {
            acl_from_pb(&c.acl)
        },
    })
}

fn write_op(op: &pb::op::Op, max: usize) -> Result<TxnOp, Refusal> {
    Ok(match op {
        pb::op::Op::Create(c) => create_op(c, max)?,
        pb::op::Op::Delete(d) => {
            check_path("delete", &d.path, false)?;
            TxnOp::Delete {
                path: d.path.clone(),
                version: d.version,
            }
        }
        pb::op::Op::SetData(s) => {
            check_path("set_data", &s.path, false)?;
            check_data("set_data", &s.path, &s.data, max)?;
            TxnOp::SetData {
                path: s.path.clone(),
                data: Bytes::copy_from_slice(&s.data), // own copy: see create_op
                version: s.version,
            }
        }
        pb::op::Op::Check(c) => {
            check_path("check", &c.path, false)?;
            TxnOp::Check {
                path: c.path.clone(),
                version: c.version,
            }
        }
    })
}

fn txn(session: i64, ops: Vec<TxnOp>, multi: bool) -> Prepared {
    Prepared::Write(Command::Txn {
        session,
        time_ms: now_ms(),
        ops,
        multi,
        auth: vec![],
    })
}

/// Classifies and validates one request of `session`.
pub fn prepare(session: i64, req: &pb::Request, max_data_bytes: usize) -> Prepared {
    let reject = |(code, msg): Refusal| Prepared::Rejected(reply::error(req.xid, 0, code, msg));
    let Some(op) = &req.op else {
        return reject((Code::BadArguments, "request without an operation".into()));
    };
    let single = |r: Result<TxnOp, Refusal>| match r {
        Ok(op) => txn(session, vec![op], false),
        Err(e) => reject(e),
    };
    match op {
        ReqOp::Create(c) => single(create_op(c, max_data_bytes)),
        ReqOp::Delete(d) => single(write_op(&pb::op::Op::Delete(d.clone()), max_data_bytes)),
        ReqOp::SetData(s) => single(write_op(&pb::op::Op::SetData(s.clone()), max_data_bytes)),
        ReqOp::SetAcl(r) => match check_path("set_acl", &r.path, false)
            .and_then(|()| check_acl_size("set_acl", &r.path, &r.acl, max_data_bytes))
        {
            Ok(()) => txn(
                session,
                vec![TxnOp::SetAcl {
                    path: r.path.clone(),
                    acl: acl_from_pb(&r.acl),
                    version: r.version,
                }],
                false,
            ),
            Err(e) => reject(e),
        },
        ReqOp::GetAcl(r) => read_path("get_acl", &r.path).map_or_else(reject, |_| Prepared::Read),
        // The connection handles addauth itself, before prep.
        ReqOp::AddAuth(_) => reject((Code::BadArguments, "addauth out of place".into())),
        ReqOp::Multi(m) => {
            let mut ops = Vec::with_capacity(m.ops.len());
            let mut total = 0usize;
            for (i, op) in m.ops.iter().enumerate() {
                let Some(inner) = &op.op else {
                    return Prepared::Rejected(multi_reject(
                        req.xid,
                        i,
                        m.ops.len(),
                        Code::BadArguments,
                        format!("multi op {i}: empty operation"),
                    ));
                };
                match write_op(inner, max_data_bytes) {
                    Ok(op) => {
                        if let TxnOp::Create { data, .. } | TxnOp::SetData { data, .. } = &op {
                            total += data.len();
                        }
                        ops.push(op)
                    }
                    Err((code, msg)) => {
                        return Prepared::Rejected(multi_reject(req.xid, i, m.ops.len(), code, msg))
                    }
                }
            }
            if total > max_data_bytes.saturating_mul(4) {
                return reject((
                    Code::BadArguments,
                    format!("multi: {total} bytes of values exceed the limit of a transaction"),
                ));
            }
            txn(session, ops, true)
        }
        ReqOp::Sync(s) => match check_path("sync", &s.path, false) {
            Ok(()) => Prepared::Sync(s.path.clone()),
            Err(e) => reject(e),
        },
        ReqOp::Close(_) => Prepared::Close,
        ReqOp::ClusterStatus(_) | ReqOp::Membership(_) => Prepared::Admin,
        ReqOp::Exists(r) => read_path("exists", &r.path).map_or_else(reject, |_| Prepared::Read),
        ReqOp::GetData(r) => read_path("get_data", &r.path).map_or_else(reject, |_| Prepared::Read),
        ReqOp::GetChildren(r) => {
            read_path("get_children", &r.path).map_or_else(reject, |_| Prepared::Read)
        }
        ReqOp::AddWatch(r) => {
            read_path("add_watch", &r.path).map_or_else(reject, |_| Prepared::Read)
        }
        ReqOp::RemoveWatches(r) => {
            read_path("remove_watches", &r.path).map_or_else(reject, |_| Prepared::Read)
        }
        ReqOp::GetAllChildrenNumber(r) => {
            read_path("get_all_children_number", &r.path).map_or_else(reject, |_| Prepared::Read)
        }
        ReqOp::MultiRead(_) | ReqOp::Ping(_) | ReqOp::SetWatches(_) | ReqOp::GetEphemerals(_) => {
            Prepared::Read
        }
    }
}

fn read_path(op: &str, p: &str) -> Result<(), Refusal> {
    check_path(op, p, false)
}

fn multi_reject(xid: i64, index: usize, len: usize, code: Code, msg: String) -> pb::Response {
    pb::Response {
        xid,
        zxid: 0,
        err: code.as_i32(),
        message: msg,
        result: Some(pb::response::Result::Multi(reply::multi_failure(
            index,
            code.as_i32(),
            len,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, data: &[u8], mode: i32, ttl: i64) -> pb::Request {
        pb::Request {
            xid: 1,
            op: Some(ReqOp::Create(pb::CreateRequest {
                path: path.into(),
                data: Bytes::copy_from_slice(data),
                mode,
                ttl_ms: ttl,
                acl: vec![],
            })),
        }
    }

    fn rejected(p: Prepared) -> pb::Response {
        match p {
            Prepared::Rejected(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_input_before_the_log() {
        let r = rejected(prepare(1, &create("a/b", b"", 0, 0), 10));
        assert_eq!(r.err, Code::BadArguments.as_i32());
        assert!(r.message.contains("a/b"), "{}", r.message);
        let r = rejected(prepare(1, &create("/big", &[0u8; 11], 0, 0), 10));
        assert!(r.message.contains("11 bytes"), "{}", r.message);
        let r = rejected(prepare(1, &create("/t", b"", 5, 0), 10));
        assert!(r.message.contains("TTL"), "{}", r.message);
        let r = rejected(prepare(1, &create("/t", b"", 0, 5), 10));
        assert!(r.message.contains("TTL"), "{}", r.message);
        let r = rejected(prepare(1, &create("/t", b"", 42, 0), 10));
        assert!(r.message.contains("mode"), "{}", r.message);
    }

    #[test]
    fn oversized_acls_are_refused() {
        let big = pb::Acl {
            perms: 31,
            scheme: "digest".into(),
            id: "x".repeat(100),
        };
        let mut req = create("/a", b"", 0, 0);
        if let Some(ReqOp::Create(c)) = &mut req.op {
            c.acl = vec![big.clone(); 2];
        }
        let r = rejected(prepare(1, &req, 100));
        assert!(r.message.contains("ACL"), "{}", r.message);
        let set = pb::Request {
            xid: 2,
            op: Some(ReqOp::SetAcl(pb::SetAclRequest {
                path: "/a".into(),
                acl: vec![big; 2],
                version: -1,
            })),
        };
        assert!(rejected(prepare(1, &set, 100)).message.contains("ACL"));
    }

    #[test]
    fn writes_become_commands() {
        match prepare(9, &create("/q/", b"x", 2, 0), 10) {
            Prepared::Write(Command::Txn {
                session,
                ops,
                multi,
                ..
            }) => {
                assert_eq!(session, 9);
                assert!(!multi);
                assert!(matches!(
                    &ops[0],
                    TxnOp::Create {
                        mode: CreateMode::PersistentSequential,
                        ..
                    }
                ));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_multi_op_reports_its_index() {
        let req = pb::Request {
            xid: 3,
            op: Some(ReqOp::Multi(pb::MultiRequest {
                ops: vec![
                    pb::Op {
                        op: Some(pb::op::Op::Check(pb::CheckRequest {
                            path: "/a".into(),
                            version: 1,
                        })),
                    },
                    pb::Op {
                        op: Some(pb::op::Op::Delete(pb::DeleteRequest {
                            path: "bad".into(),
                            version: -1,
                        })),
                    },
                    pb::Op {
                        op: Some(pb::op::Op::Delete(pb::DeleteRequest {
                            path: "/c".into(),
                            version: -1,
                        })),
                    },
                ],
            })),
        };
        let r = rejected(prepare(1, &req, 10));
        let Some(pb::response::Result::Multi(m)) = r.result else {
            panic!("multi result")
        };
        let codes: Vec<i32> = m.results.iter().map(|r| r.err).collect();
        assert_eq!(codes, vec![0, -8, -2]);
    }
}
