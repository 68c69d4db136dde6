//! Reads answered from this node's applied tree. Each read takes the tree's read lock,
//! computes its answer, registers its watch and queues its reply in that one critical
//! section: apply (the only writer) cannot run in between, so a change made after the
//! read always fires the watch, and its event is queued after this reply.

use zk_proto::pb::{self, request::Op as ReqOp, response::Result as R, EventType};
use zk_proto::Code;

use super::reply;
use crate::session::outbound::Outbound;
use crate::state::Shared;
use crate::tree::acl::{self, perms, Id};
use crate::tree::DataTree;
use crate::watch::manager::{event_message, WatchKind};
use crate::watch::WatchManager;

/// Answers a read-type request of `session`, whose connection has the identities
/// `auth`, and queues the reply on `out`. ACL checks as ZooKeeper's
/// FinalRequestProcessor: getData, getChildren, getAllChildrenNumber and multiRead need
/// READ; getACL needs READ or ADMIN (digests redacted without ADMIN); exists needs
/// nothing.
pub fn execute(shared: &Shared, session: i64, auth: &[Id], req: &pb::Request, out: &Outbound) {
    let tree = shared.tree.read();
    let zxid = shared.applied_zxid();
    let who = Who { session, auth };
    let resp = answer(&tree, &shared.watches, who, zxid, req, out);
    out.push(reply::message(resp));
}

/// Who is reading.
#[derive(Clone, Copy)]
struct Who<'a> {
    session: i64,
    auth: &'a [Id],
}

fn answer(
    tree: &DataTree,
    watches: &WatchManager,
    who: Who<'_>,
    zxid: i64,
    req: &pb::Request,
    out: &Outbound,
) -> pb::Response {
    let Who { session, auth } = who;
    let xid = req.xid;
    let Some(op) = &req.op else {
        return reply::error(
            xid,
            zxid,
            Code::BadArguments,
            "request without an operation",
        );
    };
    match op {
        ReqOp::Ping(_) => reply::ok(xid, zxid, R::Empty(pb::Empty {})),
        ReqOp::Exists(r) => {
            let stat = tree.exists(&r.path);
            if r.watch {
                watches.add(session, WatchKind::Data, &r.path);
            }
            reply::ok(
                xid,
                zxid,
                R::Exists(pb::ExistsResponse {
                    stat: stat.as_ref().map(reply::stat),
                }),
            )
        }
        ReqOp::GetData(r) => match tree.get_data_checked("get_data", &r.path, auth, perms::READ) {
            Ok((data, stat)) => {
                if r.watch {
                    watches.add(session, WatchKind::Data, &r.path);
                }
                reply::ok(
                    xid,
                    zxid,
                    R::GetData(pb::GetDataResponse {
                        data,
                        stat: Some(reply::stat(&stat)),
                    }),
                )
            }
            Err(e) => reply::tree_error(xid, zxid, &e),
        },
        ReqOp::GetChildren(r) => match tree
            .check_acl("get_children", &r.path, auth, perms::READ)
            .and_then(|()| tree.get_children(&r.path))
        {
            Ok((children, stat)) => {
                if r.watch {
                    watches.add(session, WatchKind::Child, &r.path);
                }
                reply::ok(
                    xid,
                    zxid,
                    R::GetChildren(pb::GetChildrenResponse {
                        children,
                        stat: Some(reply::stat(&stat)),
                    }),
                )
            }
            Err(e) => reply::tree_error(xid, zxid, &e),
        },
        ReqOp::MultiRead(m) => {
            let results = m.ops.iter().map(|op| read_one(tree, auth, op)).collect();
            reply::ok(xid, zxid, R::MultiRead(pb::MultiReadResponse { results }))
        }
        ReqOp::GetEphemerals(r) => {
            let prefix = if r.prefix.is_empty() {
                "/"
            } else {
                r.prefix.as_str()
            };
            reply::ok(
                xid,
                zxid,
                R::Paths(pb::PathsResponse {
                    paths: tree.get_ephemerals(session, prefix),
                }),
            )
        }
        ReqOp::GetAcl(r) => match tree
            .check_acl("get_acl", &r.path, auth, perms::READ | perms::ADMIN)
            .and_then(|()| tree.get_acl(&r.path))
        {
            Ok((node_acl, stat)) => {
                // Without ADMIN the digests are redacted (CVE-2019-0201).
                let shown = if acl::allowed(node_acl, auth, perms::ADMIN) {
                    node_acl.to_vec()
                } else {
                    acl::redacted(node_acl)
                };
                reply::ok(
                    xid,
                    zxid,
                    R::GetAcl(pb::GetAclResponse {
                        acl: shown
                            .into_iter()
                            .map(|a| pb::Acl {
                                perms: a.perms,
                                scheme: a.scheme,
                                id: a.id,
                            })
                            .collect(),
                        stat: Some(reply::stat(&stat)),
                    }),
                )
            }
            Err(e) => reply::tree_error(xid, zxid, &e),
        },
        ReqOp::GetAllChildrenNumber(r) => match tree
            .check_acl("get_all_children_number", &r.path, auth, perms::READ)
            .and_then(|()| tree.all_children_number(&r.path))
        {
            Ok(count) => reply::ok(xid, zxid, R::Count(pb::CountResponse { count })),
            Err(e) => reply::tree_error(xid, zxid, &e),
        },
        ReqOp::AddWatch(r) => {
            let kind = if r.mode == pb::AddWatchMode::PersistentRecursiveWatch as i32 {
                WatchKind::PersistentRecursive
            } else {
                WatchKind::Persistent
            };
            watches.add(session, kind, &r.path);
            reply::ok(xid, zxid, R::Empty(pb::Empty {}))
        }
        ReqOp::RemoveWatches(r) => {
            let kinds: &[WatchKind] = match pb::WatcherType::try_from(r.watcher_type) {
                Ok(pb::WatcherType::Children) => &[WatchKind::Child],
                Ok(pb::WatcherType::Data) => &[WatchKind::Data],
                Ok(pb::WatcherType::Any) => WatchManager::all_kinds(),
                Ok(pb::WatcherType::Persistent) => &[WatchKind::Persistent],
                Ok(pb::WatcherType::PersistentRecursive) => &[WatchKind::PersistentRecursive],
                _ => {
                    return reply::error(
                        xid,
                        zxid,
                        Code::BadArguments,
                        format!(
                            "remove_watches {}: unknown watcher type {}",
                            r.path, r.watcher_type
                        ),
                    )
                }
            };
            let found = if r.check_only {
                watches.has(session, &r.path, kinds)
            } else {
                watches.remove(session, &r.path, kinds)
            };
            if found {
                reply::ok(xid, zxid, R::Empty(pb::Empty {}))
            } else {
                reply::error(
                    xid,
                    zxid,
                    Code::NoWatcher,
                    format!("remove_watches {}: no such watch", r.path),
                )
            }
        }
        ReqOp::SetWatches(s) => {
            set_watches(tree, watches, session, zxid, s, out);
            reply::ok(xid, zxid, R::Empty(pb::Empty {}))
        }
        ReqOp::Create(_)
        | ReqOp::Delete(_)
        | ReqOp::SetData(_)
        | ReqOp::Multi(_)
        | ReqOp::Sync(_)
        | ReqOp::Close(_)
        | ReqOp::ClusterStatus(_)
        | ReqOp::SetAcl(_)
        | ReqOp::AddAuth(_)
        | ReqOp::Membership(_) => reply::error(xid, zxid, Code::SystemError, "not a read"),
    }
}

fn read_one(tree: &DataTree, auth: &[Id], op: &pb::ReadOp) -> pb::ReadResult {
    use pb::read_result::Result as RR;
    let fail = |code: Code| pb::ReadResult {
        err: code.as_i32(),
        result: None,
    };
    match &op.op {
        Some(pb::read_op::Op::GetData(r)) => {
            if zk_proto::path::validate(&r.path, false).is_err() {
                return fail(Code::BadArguments);
            }
            match tree.get_data_checked("get_data", &r.path, auth, perms::READ) {
                Ok((data, stat)) => pb::ReadResult {
                    err: 0,
                    result: Some(RR::GetData(pb::GetDataResponse {
                        data,
                        stat: Some(reply::stat(&stat)),
                    })),
                },
                Err(e) => fail(e.code()),
            }
        }
        Some(pb::read_op::Op::GetChildren(r)) => {
            if zk_proto::path::validate(&r.path, false).is_err() {
                return fail(Code::BadArguments);
            }
            match tree
                .check_acl("get_children", &r.path, auth, perms::READ)
                .and_then(|()| tree.get_children(&r.path))
            {
                Ok((children, stat)) => pb::ReadResult {
                    err: 0,
                    result: Some(RR::GetChildren(pb::GetChildrenResponse {
                        children,
                        stat: Some(reply::stat(&stat)),
                    })),
                },
                Err(e) => fail(e.code()),
            }
        }
        None => fail(Code::BadArguments),
    }
}

/// Re-arms a reconnecting client's watches; anything that changed after
/// `relative_zxid` fires at once (ZooKeeper's `DataTree.setWatches`).
fn set_watches(
    tree: &DataTree,
    watches: &WatchManager,
    session: i64,
    zxid: i64,
    s: &pb::SetWatchesRequest,
    out: &Outbound,
) {
    let rel = s.relative_zxid;
    let valid = |p: &String| zk_proto::path::validate(p, false).is_ok();
    for p in s.data_watches.iter().filter(|p| valid(p)) {
        match tree.exists(p) {
            None => {
                out.push(event_message(EventType::NodeDeleted, p, zxid));
            }
            Some(st) if st.mzxid > rel => {
                out.push(event_message(EventType::NodeDataChanged, p, st.mzxid));
            }
            Some(_) => watches.add(session, WatchKind::Data, p),
        }
    }
    for p in s.exist_watches.iter().filter(|p| valid(p)) {
        match tree.exists(p) {
            Some(st) => {
                out.push(event_message(EventType::NodeCreated, p, st.czxid));
            }
            None => watches.add(session, WatchKind::Data, p),
        }
    }
    for p in s.child_watches.iter().filter(|p| valid(p)) {
        match tree.exists(p) {
            None => {
                out.push(event_message(EventType::NodeDeleted, p, zxid));
            }
            Some(st) if st.pzxid > rel => {
                out.push(event_message(EventType::NodeChildrenChanged, p, st.pzxid));
            }
            Some(_) => watches.add(session, WatchKind::Child, p),
        }
    }
    for p in s.persistent_watches.iter().filter(|p| valid(p)) {
        watches.add(session, WatchKind::Persistent, p);
    }
    for p in s.persistent_recursive_watches.iter().filter(|p| valid(p)) {
        watches.add(session, WatchKind::PersistentRecursive, p);
    }
}
