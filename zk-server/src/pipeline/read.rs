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
use crate::watch::manager::{event_message, WatchKind, WatchLimitExceeded};
use crate::watch::WatchManager;

/// Answers a read-type request of `session`, whose connection has the identities
/// `auth`, and queues the reply on `out`. ACL checks as ZooKeeper's
/// FinalRequestProcessor: getData, getChildren, getAllChildrenNumber and multiRead need
/// READ; getACL needs READ or ADMIN (digests redacted without ADMIN). As ZooKeeper
/// 3.8.4 / 3.9.2 (ZOOKEEPER-2590), exists on a node that exists needs READ (for a
/// missing node everyone gets `None`, as before). addWatch on an existing node needs READ
/// (ZooKeeper checks nothing there; we are stricter), and setWatches silently skips the
/// paths the session may not read. Events are filtered by READ as they fire
/// ([`WatchManager::trigger`]).
pub fn execute(shared: &Shared, session: i64, auth: &[Id], req: &pb::Request, out: &Outbound) {
    let tree = shared.tree.read();
    let zxid = shared.applied_zxid();
    let who = Who { session, auth };
    let resp = answer(&tree, &shared.watches, who, zxid, req, out);
    if resp.err == Code::QuotaExceeded.as_i32() {
        shared
            .metrics
            .limits
            .watches_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    out.push(reply::message(resp));
}

/// The reply to a read whose watch was refused: QuotaExceeded, naming the limit. The
/// read's result is not returned, so a client never holds data it believes watched.
fn watch_refused(
    xid: i64,
    zxid: i64,
    op: &str,
    path: &str,
    e: &WatchLimitExceeded,
) -> pb::Response {
    reply::error(xid, zxid, Code::QuotaExceeded, format!("{op} {path}: {e}"))
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
            if let Err(e) = readable_if_present(tree, "exists", &r.path, auth) {
                return reply::tree_error(xid, zxid, &e);
            }
            let stat = tree.exists(&r.path);
            if r.watch {
                if let Err(e) = watches.add(session, WatchKind::Data, &r.path) {
                    return watch_refused(xid, zxid, "exists", &r.path, &e);
                }
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
                    if let Err(e) = watches.add(session, WatchKind::Data, &r.path) {
                        return watch_refused(xid, zxid, "get_data", &r.path, &e);
                    }
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
                    if let Err(e) = watches.add(session, WatchKind::Child, &r.path) {
                        return watch_refused(xid, zxid, "get_children", &r.path, &e);
                    }
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
            if let Err(e) = readable_if_present(tree, "add_watch", &r.path, auth) {
                return reply::tree_error(xid, zxid, &e);
            }
            let kind = if r.mode == pb::AddWatchMode::PersistentRecursiveWatch as i32 {
                WatchKind::PersistentRecursive
            } else {
                WatchKind::Persistent
            };
            match watches.add(session, kind, &r.path) {
                Ok(()) => reply::ok(xid, zxid, R::Empty(pb::Empty {})),
                Err(e) => watch_refused(xid, zxid, "add_watch", &r.path, &e),
            }
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
        ReqOp::SetWatches(s) => match set_watches(tree, watches, who, zxid, s, out) {
            Ok(()) => reply::ok(xid, zxid, R::Empty(pb::Empty {})),
            Err(e) => watch_refused(xid, zxid, "set_watches", "(re-arming)", &e),
        },
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

/// NoAuth if the node at `path` exists and `auth` may not READ it; Ok if it is missing
/// (a watch on a future node is allowed: its events are checked when they fire).
fn readable_if_present(
    tree: &DataTree,
    op: &str,
    path: &str,
    auth: &[Id],
) -> Result<(), crate::tree::TreeError> {
    match tree.node_acl(path) {
        Some(_) => tree.check_acl(op, path, auth, perms::READ),
        None => Ok(()),
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
/// `relative_zxid` fires at once (ZooKeeper's `DataTree.setWatches`). Paths of existing
/// nodes the session may not READ are skipped: no event, no watch. Stops at the
/// session's watch limit: the watches re-armed so far stay, the error says the rest
/// were not.
fn set_watches(
    tree: &DataTree,
    watches: &WatchManager,
    who: Who<'_>,
    zxid: i64,
    s: &pb::SetWatchesRequest,
    out: &Outbound,
) -> Result<(), WatchLimitExceeded> {
    let session = who.session;
    let rel = s.relative_zxid;
    let valid = |p: &String| {
        zk_proto::path::validate(p, false).is_ok()
            && readable_if_present(tree, "set_watches", p, who.auth).is_ok()
    };
    for p in s.data_watches.iter().filter(|p| valid(p)) {
        match tree.exists(p) {
            None => {
                out.push(event_message(EventType::NodeDeleted, p, zxid));
            }
            Some(st) if st.mzxid > rel => {
                out.push(event_message(EventType::NodeDataChanged, p, st.mzxid));
            }
            Some(_) => watches.add(session, WatchKind::Data, p)?,
        }
    }
    for p in s.exist_watches.iter().filter(|p| valid(p)) {
        match tree.exists(p) {
            Some(st) => {
                out.push(event_message(EventType::NodeCreated, p, st.czxid));
            }
            None => watches.add(session, WatchKind::Data, p)?,
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
            Some(_) => watches.add(session, WatchKind::Child, p)?,
        }
    }
    for p in s.persistent_watches.iter().filter(|p| valid(p)) {
        watches.add(session, WatchKind::Persistent, p)?;
    }
    for p in s.persistent_recursive_watches.iter().filter(|p| valid(p)) {
        watches.add(session, WatchKind::PersistentRecursive, p)?;
    }
    Ok(())
}
