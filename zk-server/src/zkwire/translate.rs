//! ZooKeeper requests -> native [`pb::Request`]s, native responses -> ZooKeeper replies.
//!
//! Every ZooKeeper request becomes exactly one native request with the same xid, so the
//! native session task (`session::conn`) orders, executes and answers all of them. What
//! the native protocol has no op for is answered here, but still in order: such a
//! request travels as a native `ping` carrying the xid, and its [`Reply`] says what to
//! answer when that ping's reply comes back (auth, whoAmI, reconfig, unknown opcodes,
//! malformed records, ACL errors).
//!
//! ACLs map onto the native ones: create's ACL list, `setACL`, `getACL` and auth packets
//! (`addauth`, xid -4) become native `CreateRequest.acl`, `SetAcl`, `GetAcl`, `AddAuth`.

use bytes::Bytes;
use zk_proto::pb::{self, request::Op as ReqOp, response::Result as R};
use zk_proto::Code;

use super::jute::{Acl, JuteError, Reader, Writer};

/// `ZooDefs.OpCode` values.
#[allow(missing_docs)]
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// ZooKeeper's name of an opcode (metrics labels, logs).
pub fn op_name(code: i32) -> &'static str {
    match code {
        op::CREATE => "create",
        op::DELETE => "delete",
        op::EXISTS => "exists",
        op::GET_DATA => "getData",
        op::SET_DATA => "setData",
        op::GET_ACL => "getACL",
        op::SET_ACL => "setACL",
        op::GET_CHILDREN => "getChildren",
        op::SYNC => "sync",
        op::PING => "ping",
        op::GET_CHILDREN2 => "getChildren2",
        op::CHECK => "check",
        op::MULTI => "multi",
        op::CREATE2 => "create2",
        op::RECONFIG => "reconfig",
        op::CHECK_WATCHES => "checkWatches",
        op::REMOVE_WATCHES => "removeWatches",
        op::CREATE_CONTAINER => "createContainer",
        op::DELETE_CONTAINER => "deleteContainer",
        op::CREATE_TTL => "createTTL",
        op::MULTI_READ => "multiRead",
        op::AUTH => "auth",
        op::SET_WATCHES => "setWatches",
        op::SASL => "sasl",
        op::GET_EPHEMERALS => "getEphemerals",
        op::GET_ALL_CHILDREN_NUMBER => "getAllChildrenNumber",
        op::SET_WATCHES2 => "setWatches2",
        op::ADD_WATCH => "addWatch",
        op::WHO_AM_I => "whoAmI",
        op::CLOSE_SESSION => "closeSession",
        _ => "unknown",
    }
}

/// `Watcher.Event.KeeperState.SyncConnected`: the state of every watch notification.
pub const STATE_SYNC_CONNECTED: i32 = 3;
/// The xid of watch notifications.
pub const NOTIFICATION_XID: i32 = -1;

/// How to answer a request once its native reply comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Header only.
    Empty,
    /// `CreateResponse{path}` (opcode create).
    Create,
    /// `Create2Response{path, stat}` (create2, createContainer, createTTL).
    Create2,
    /// `SetDataResponse{stat}`.
    SetData,
    /// `ExistsResponse{stat}`; a missing node is NoNode (the client turns it into null).
    Exists,
    /// `GetDataResponse{data, stat}`.
    GetData,
    /// `GetChildrenResponse{children}`.
    GetChildren,
    /// `GetChildren2Response{children, stat}`.
    GetChildren2,
    /// `SyncResponse{path}`.
    Sync,
    /// `GetACLResponse{acl, stat}`.
    GetAcl,
    /// The answer to an auth packet: header only; a refusal is AuthFailed and a close.
    Auth,
    /// A standalone check (a one-op native multi): header only, with the op's error.
    Check,
    /// A `MultiResponse`; the opcodes of the request's ops pick each result's layout.
    Multi(Vec<i32>),
    /// A multiRead `MultiResponse`.
    MultiRead,
    /// `GetEphemeralsResponse{ephemerals}`.
    Ephemerals,
    /// `GetAllChildrenNumberResponse{totalNumber}`.
    ChildrenNumber,
    /// `WhoAmIResponse{[ClientInfo{scheme, user}]}`.
    WhoAmI(Vec<(String, String)>),
    /// addWatch: `ErrorResponse{err = 0}` after the header on success (the Java client
    /// reads that record; a header-only reply breaks its connection).
    AddWatch,
    /// Header only with this error (the request travelled as a ping).
    Fixed(Code),
    /// AuthFailed, then the connection closes (ZooKeeper's behaviour).
    AuthFailed,
    /// The reply to closeSession, then the connection closes.
    Close,
}

/// What the connection does after writing a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep serving.
    Continue,
    /// Close the connection.
    Close,
}

/// A decoded request.
#[derive(Debug)]
pub struct Decoded {
    /// What the native pipeline runs.
    pub request: pb::Request,
    /// How to answer.
    pub reply: Reply,
}

/// The identities a connection has authenticated as (for whoAmI), starting with
/// `ip:<address>` like ZooKeeper.
pub type AuthInfo = Vec<(String, String)>;

fn ping(xid: i64, reply: Reply) -> Decoded {
    Decoded {
        request: pb::Request {
            xid,
            op: Some(ReqOp::Ping(pb::PingRequest {})),
        },
        reply,
    }
}

fn native(xid: i64, op: ReqOp, reply: Reply) -> Decoded {
    Decoded {
        request: pb::Request { xid, op: Some(op) },
        reply,
    }
}

/// A create-type record, as a native request; `Err` is a ZooKeeper error to answer.
fn create(r: &mut Reader<'_>, opcode: i32) -> Result<Result<pb::CreateRequest, Code>, JuteError> {
    let path = r.ustring("path")?;
    let data = r.buffer("data")?;
    let acl = r.acls()?;
    let flags = r.int("flags")?;
    let ttl_ms = if opcode == op::CREATE_TTL {
        r.long("ttl")?
    } else {
        0
    };
    if acl.is_empty() {
        return Ok(Err(Code::InvalidAcl));
    }
    if opcode == op::CREATE_CONTAINER && flags != pb::CreateMode::Container as i32 {
        return Ok(Err(Code::BadArguments));
    }
    Ok(Ok(pb::CreateRequest {
        path,
        data,
        mode: flags,
        ttl_ms,
        acl: acl_to_pb(acl),
    }))
}

fn acl_to_pb(acl: Vec<Acl>) -> Vec<pb::Acl> {
    acl.into_iter()
        .map(|a| pb::Acl {
            perms: a.perms,
            scheme: a.scheme,
            id: a.id,
        })
        .collect()
}

fn set_watches(r: &mut Reader<'_>, v2: bool) -> Result<pb::SetWatchesRequest, JuteError> {
    let mut s = pb::SetWatchesRequest {
        relative_zxid: r.long("relativeZxid")?,
        data_watches: r.strings("dataWatches")?,
        exist_watches: r.strings("existWatches")?,
        child_watches: r.strings("childWatches")?,
        ..Default::default()
    };
    if v2 {
        s.persistent_watches = r.strings("persistentWatches")?;
        s.persistent_recursive_watches = r.strings("persistentRecursiveWatches")?;
    }
    Ok(s)
}

/// The ops of a multi or multiRead request: (opcode, op) pairs up to the `done` header.
enum MultiOps {
    Write(Vec<i32>, Vec<pb::Op>),
    Read(Vec<pb::ReadOp>),
    /// An op the multi cannot hold, or a create with an empty ACL.
    Refused(Code),
}

fn multi_ops(r: &mut Reader<'_>, read: bool) -> Result<MultiOps, JuteError> {
    let mut codes = Vec::new();
    let mut ops = Vec::new();
    let mut reads = Vec::new();
    loop {
        let t = r.int("MultiHeader.type")?;
        let done = r.boolean("MultiHeader.done")?;
        let _err = r.int("MultiHeader.err")?;
        if done {
            break;
        }
        use pb::op::Op as O;
        let write = |o: O| pb::Op { op: Some(o) };
        match (read, t) {
            (false, op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL) => {
                match create(r, t)? {
                    Ok(c) => ops.push(write(O::Create(c))),
                    Err(code) => return Ok(MultiOps::Refused(code)),
                }
            }
            (false, op::DELETE) => ops.push(write(O::Delete(pb::DeleteRequest {
                path: r.ustring("path")?,
                version: r.int("version")?,
            }))),
            (false, op::SET_DATA) => ops.push(write(O::SetData(pb::SetDataRequest {
                path: r.ustring("path")?,
                data: r.buffer("data")?,
                version: r.int("version")?,
            }))),
            (false, op::CHECK) => ops.push(write(O::Check(pb::CheckRequest {
                path: r.ustring("path")?,
                version: r.int("version")?,
            }))),
            (true, op::GET_DATA) => reads.push(pb::ReadOp {
                op: Some(pb::read_op::Op::GetData(pb::GetDataRequest {
                    path: r.ustring("path")?,
                    watch: r.boolean("watch")?,
                })),
            }),
            (true, op::GET_CHILDREN) => reads.push(pb::ReadOp {
                op: Some(pb::read_op::Op::GetChildren(pb::GetChildrenRequest {
                    path: r.ustring("path")?,
                    watch: r.boolean("watch")?,
                })),
            }),
            _ => {
                return Err(JuteError::Invalid {
                    field: "MultiHeader.type",
                    reason: format!("op {t} cannot be part of this multi"),
                })
            }
        }
        codes.push(t);
    }
    Ok(if read {
        MultiOps::Read(reads)
    } else {
        MultiOps::Write(codes, ops)
    })
}

/// Decodes the body of a request of type `opcode` with header xid `xid`. Never fails:
/// malformed records and unsupported opcodes become a [`Reply::Fixed`] error.
pub fn decode_request(xid: i32, opcode: i32, body: &[u8], auth: &mut AuthInfo) -> Decoded {
    match decode_body(i64::from(xid), opcode, body, auth) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(xid, op = op_name(opcode), "malformed request: {e}");
            ping(i64::from(xid), Reply::Fixed(Code::MarshallingError))
        }
    }
}

fn decode_body(
    xid: i64,
    opcode: i32,
    body: &[u8],
    auth: &mut AuthInfo,
) -> Result<Decoded, JuteError> {
    let r = &mut Reader::new(body);
    let path_watch = |r: &mut Reader<'_>| -> Result<(String, bool), JuteError> {
        Ok((r.ustring("path")?, r.boolean("watch")?))
    };
    Ok(match opcode {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
            let reply = if opcode == op::CREATE {
                Reply::Create
            } else {
                Reply::Create2
            };
            match create(r, opcode)? {
                Ok(c) => native(xid, ReqOp::Create(c), reply),
                Err(code) => ping(xid, Reply::Fixed(code)),
            }
        }
        op::DELETE => native(
            xid,
            ReqOp::Delete(pb::DeleteRequest {
                path: r.ustring("path")?,
                version: r.int("version")?,
            }),
            Reply::Empty,
        ),
        op::EXISTS => {
            let (path, watch) = path_watch(r)?;
            native(
                xid,
                ReqOp::Exists(pb::ExistsRequest { path, watch }),
                Reply::Exists,
            )
        }
        op::GET_DATA => {
            let (path, watch) = path_watch(r)?;
            native(
                xid,
                ReqOp::GetData(pb::GetDataRequest { path, watch }),
                Reply::GetData,
            )
        }
        op::SET_DATA => native(
            xid,
            ReqOp::SetData(pb::SetDataRequest {
                path: r.ustring("path")?,
                data: r.buffer("data")?,
                version: r.int("version")?,
            }),
            Reply::SetData,
        ),
        op::GET_ACL => native(
            xid,
            ReqOp::GetAcl(pb::GetAclRequest {
                path: r.ustring("path")?,
            }),
            Reply::GetAcl,
        ),
        op::SET_ACL => {
            let path = r.ustring("path")?;
            let acl = r.acls()?;
            let version = r.int("version")?;
            if acl.is_empty() {
                ping(xid, Reply::Fixed(Code::InvalidAcl))
            } else {
                native(
                    xid,
                    ReqOp::SetAcl(pb::SetAclRequest {
                        path,
                        acl: acl_to_pb(acl),
                        version,
                    }),
                    Reply::SetData,
                )
            }
        }
        op::GET_CHILDREN | op::GET_CHILDREN2 => {
            let (path, watch) = path_watch(r)?;
            let reply = if opcode == op::GET_CHILDREN {
                Reply::GetChildren
            } else {
                Reply::GetChildren2
            };
            native(
                xid,
                ReqOp::GetChildren(pb::GetChildrenRequest { path, watch }),
                reply,
            )
        }
        op::SYNC => native(
            xid,
            ReqOp::Sync(pb::SyncRequest {
                path: r.ustring("path")?,
            }),
            Reply::Sync,
        ),
        op::PING => ping(xid, Reply::Empty),
        op::CHECK => native(
            xid,
            ReqOp::Multi(pb::MultiRequest {
                ops: vec![pb::Op {
                    op: Some(pb::op::Op::Check(pb::CheckRequest {
                        path: r.ustring("path")?,
                        version: r.int("version")?,
                    })),
                }],
            }),
            Reply::Check,
        ),
        op::MULTI => match multi_ops(r, false)? {
            MultiOps::Write(codes, ops) => native(
                xid,
                ReqOp::Multi(pb::MultiRequest { ops }),
                Reply::Multi(codes),
            ),
            MultiOps::Refused(code) => ping(xid, Reply::Fixed(code)),
            MultiOps::Read(_) => ping(xid, Reply::Fixed(Code::MarshallingError)),
        },
        op::MULTI_READ => match multi_ops(r, true)? {
            MultiOps::Read(ops) => native(
                xid,
                ReqOp::MultiRead(pb::MultiReadRequest { ops }),
                Reply::MultiRead,
            ),
            _ => ping(xid, Reply::Fixed(Code::MarshallingError)),
        },
        op::RECONFIG => ping(xid, Reply::Fixed(Code::ReconfigDisabled)),
        op::CHECK_WATCHES | op::REMOVE_WATCHES => native(
            xid,
            ReqOp::RemoveWatches(pb::RemoveWatchesRequest {
                path: r.ustring("path")?,
                watcher_type: r.int("type")?,
                check_only: opcode == op::CHECK_WATCHES,
            }),
            Reply::Empty,
        ),
        op::AUTH => {
            let _type = r.int("type")?;
            let scheme = r.ustring("scheme")?;
            let secret = r.buffer("auth")?;
            if scheme == "digest" {
                // `user:password`; whoAmI reports the user (ZooKeeper's getUserName).
                let text = String::from_utf8_lossy(&secret);
                let user = text.split(':').next().unwrap_or_default().to_string();
                let entry = ("digest".to_string(), user);
                if !auth.contains(&entry) {
                    auth.push(entry);
                }
                native(
                    xid,
                    ReqOp::AddAuth(pb::AddAuthRequest {
                        scheme,
                        auth: secret,
                    }),
                    Reply::Auth,
                )
            } else {
                tracing::info!(scheme, "auth with an unsupported scheme; closing");
                ping(xid, Reply::AuthFailed)
            }
        }
        op::SET_WATCHES | op::SET_WATCHES2 => native(
            xid,
            ReqOp::SetWatches(set_watches(r, opcode == op::SET_WATCHES2)?),
            Reply::Empty,
        ),
        op::GET_EPHEMERALS => native(
            xid,
            ReqOp::GetEphemerals(pb::GetEphemeralsRequest {
                prefix: r.ustring("prefixPath")?,
            }),
            Reply::Ephemerals,
        ),
        op::GET_ALL_CHILDREN_NUMBER => native(
            xid,
            ReqOp::GetAllChildrenNumber(pb::GetAllChildrenNumberRequest {
                path: r.ustring("path")?,
            }),
            Reply::ChildrenNumber,
        ),
        op::ADD_WATCH => {
            let path = r.ustring("path")?;
            let mode = match r.int("mode")? {
                0 => pb::AddWatchMode::PersistentWatch,
                1 => pb::AddWatchMode::PersistentRecursiveWatch,
                _ => return Ok(ping(xid, Reply::Fixed(Code::BadArguments))),
            };
            native(
                xid,
                ReqOp::AddWatch(pb::AddWatchRequest {
                    path,
                    mode: mode as i32,
                }),
                Reply::AddWatch,
            )
        }
        op::WHO_AM_I => ping(xid, Reply::WhoAmI(auth.clone())),
        op::CLOSE_SESSION => native(xid, ReqOp::Close(pb::CloseRequest {}), Reply::Close),
        _ => ping(xid, Reply::Fixed(Code::Unimplemented)),
    })
}

fn stat_of(s: &Option<pb::Stat>) -> pb::Stat {
    s.unwrap_or_default()
}

/// Encodes the ZooKeeper reply (one framed packet) to a request answered by `resp`.
pub fn encode_reply(reply: &Reply, resp: &pb::Response) -> (Bytes, After) {
    let xid = i32::try_from(resp.xid).unwrap_or(0);
    let zxid = resp.zxid;
    let mut w = Writer::framed();
    let mut after = After::Continue;
    let header_only = |code: i32| {
        let mut w = Writer::framed();
        w.reply_header(xid, zxid, code);
        w.finish_frame()
    };
    match reply {
        Reply::Fixed(code) => return (header_only(code.as_i32()), After::Continue),
        Reply::AuthFailed => return (header_only(Code::AuthFailed.as_i32()), After::Close),
        Reply::Auth if resp.err != 0 => {
            return (header_only(Code::AuthFailed.as_i32()), After::Close)
        }
        Reply::Close => after = After::Close,
        Reply::Multi(_) | Reply::MultiRead
            if matches!(resp.result, Some(R::Multi(_)) | Some(R::MultiRead(_))) => {}
        _ if resp.err != 0 => return (header_only(resp.err), after),
        _ => {}
    }
    // Replies whose success depends on the native result.
    let missing = |w: &mut Writer| {
        w.reply_header(xid, zxid, Code::NoNode.as_i32());
    };
    match (reply, &resp.result) {
        (Reply::Create, Some(R::Create(c))) => {
            w.reply_header(xid, zxid, 0).ustring(&c.path);
        }
        (Reply::Create2, Some(R::Create(c))) => {
            w.reply_header(xid, zxid, 0)
                .ustring(&c.path)
                .stat(&stat_of(&c.stat));
        }
        (Reply::SetData, Some(R::Stat(s))) => {
            w.reply_header(xid, zxid, 0).stat(&stat_of(&s.stat));
        }
        (Reply::Exists, Some(R::Exists(e))) => match &e.stat {
            Some(s) => {
                w.reply_header(xid, zxid, 0).stat(s);
            }
            None => missing(&mut w),
        },
        (Reply::GetData, Some(R::GetData(g))) => {
            w.reply_header(xid, zxid, 0)
                .buffer(&g.data)
                .stat(&stat_of(&g.stat));
        }
        (Reply::GetChildren, Some(R::GetChildren(g))) => {
            w.reply_header(xid, zxid, 0).strings(&g.children);
        }
        (Reply::GetChildren2, Some(R::GetChildren(g))) => {
            w.reply_header(xid, zxid, 0)
                .strings(&g.children)
                .stat(&stat_of(&g.stat));
        }
        (Reply::Sync, Some(R::Sync(s))) => {
            w.reply_header(xid, zxid, 0).ustring(&s.path);
        }
        (Reply::GetAcl, Some(R::GetAcl(g))) => {
            let acl: Vec<Acl> = g
                .acl
                .iter()
                .map(|a| Acl {
                    perms: a.perms,
                    scheme: a.scheme.clone(),
                    id: a.id.clone(),
                })
                .collect();
            w.reply_header(xid, zxid, 0)
                .acls(&acl)
                .stat(&stat_of(&g.stat));
        }
        (Reply::Multi(codes), Some(R::Multi(m))) => {
            w.reply_header(xid, zxid, 0);
            let failed = resp.err != 0 || m.results.iter().any(|r| r.err != 0);
            for (i, r) in m.results.iter().enumerate() {
                let code = codes.get(i).copied().unwrap_or(op::ERROR);
                multi_result(&mut w, code, r, failed);
            }
            w.int(-1).boolean(true).int(-1);
        }
        (Reply::MultiRead, Some(R::MultiRead(m))) => {
            w.reply_header(xid, zxid, 0);
            for r in &m.results {
                use pb::read_result::Result as RR;
                match (&r.result, r.err) {
                    (Some(RR::GetData(g)), 0) => {
                        w.int(op::GET_DATA).boolean(false).int(0);
                        w.buffer(&g.data).stat(&stat_of(&g.stat));
                    }
                    (Some(RR::GetChildren(g)), 0) => {
                        w.int(op::GET_CHILDREN).boolean(false).int(0);
                        w.strings(&g.children);
                    }
                    (_, err) => {
                        let err = if err == 0 {
                            Code::SystemError.as_i32()
                        } else {
                            err
                        };
                        w.int(op::ERROR).boolean(false).int(err).int(err);
                    }
                }
            }
            w.int(-1).boolean(true).int(-1);
        }
        (Reply::Check, _) => {
            w.reply_header(xid, zxid, resp.err);
        }
        (Reply::Ephemerals, Some(R::Paths(p))) => {
            w.reply_header(xid, zxid, 0).strings(&p.paths);
        }
        (Reply::ChildrenNumber, Some(R::Count(c))) => {
            w.reply_header(xid, zxid, 0).int(c.count);
        }
        (Reply::WhoAmI(ids), _) => {
            w.reply_header(xid, zxid, 0).int(len_i32(ids.len()));
            for (scheme, user) in ids {
                w.ustring(scheme).ustring(user);
            }
        }
        (Reply::AddWatch, _) => {
            w.reply_header(xid, zxid, 0).int(0);
        }
        (Reply::Empty | Reply::Close | Reply::Auth, _) => {
            w.reply_header(xid, zxid, 0);
        }
        (reply, result) => {
            tracing::error!(?reply, ?result, "native reply does not match the request");
            w.reply_header(xid, zxid, Code::SystemError.as_i32());
        }
    }
    (w.finish_frame(), after)
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One result of a write multi: `MultiHeader{type, done=false, err}` and its record.
/// A failed multi answers every op with an `ErrorResult` (OK before the failing op, its
/// error, RuntimeInconsistency after), as ZooKeeper's `MultiResponse` does.
fn multi_result(w: &mut Writer, opcode: i32, r: &pb::OpResult, failed: bool) {
    use pb::op_result::Result as O;
    if failed {
        w.int(op::ERROR).boolean(false).int(r.err).int(r.err);
        return;
    }
    match &r.result {
        Some(O::Create(c)) if opcode == op::CREATE => {
            w.int(op::CREATE).boolean(false).int(0).ustring(&c.path);
        }
        Some(O::Create(c)) => {
            w.int(op::CREATE2)
                .boolean(false)
                .int(0)
                .ustring(&c.path)
                .stat(&stat_of(&c.stat));
        }
        Some(O::Stat(s)) => {
            w.int(op::SET_DATA)
                .boolean(false)
                .int(0)
                .stat(&stat_of(&s.stat));
        }
        Some(O::Empty(_)) | None => {
            w.int(opcode).boolean(false).int(0);
        }
    }
}

/// Encodes a watch notification (xid -1, state SyncConnected).
pub fn encode_event(ev: &pb::WatchEvent) -> Bytes {
    let mut w = Writer::framed();
    w.reply_header(NOTIFICATION_XID, ev.zxid, 0)
        .int(ev.event_type)
        .int(STATE_SYNC_CONNECTED)
        .ustring(&ev.path);
    w.finish_frame()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        f(&mut w);
        w.into_bytes().to_vec()
    }

    #[test]
    fn decodes_create_modes_and_acl_checks() {
        let body = req(|w| {
            w.ustring("/a").buffer(b"x").acls(&[Acl::open()]).int(3);
        });
        let d = decode_request(5, op::CREATE2, &body, &mut Vec::new());
        assert_eq!(d.reply, Reply::Create2);
        let Some(ReqOp::Create(c)) = d.request.op else {
            panic!("create")
        };
        assert_eq!((c.path.as_str(), c.mode, d.request.xid), ("/a", 3, 5));
        let body = req(|w| {
            w.ustring("/a").buffer(b"x").acls(&[]).int(0);
        });
        let d = decode_request(5, op::CREATE, &body, &mut Vec::new());
        assert_eq!(d.reply, Reply::Fixed(Code::InvalidAcl));
        let d = decode_request(5, op::CREATE, &body[..3], &mut Vec::new());
        assert_eq!(d.reply, Reply::Fixed(Code::MarshallingError));
        let d = decode_request(5, 999, &[], &mut Vec::new());
        assert_eq!(d.reply, Reply::Fixed(Code::Unimplemented));
    }

    #[test]
    fn failed_multi_is_all_error_results_with_ok_header() {
        let resp = pb::Response {
            xid: 9,
            zxid: 100,
            err: Code::BadVersion.as_i32(),
            message: String::new(),
            result: Some(R::Multi(pb::MultiResponse {
                results: vec![
                    pb::OpResult {
                        err: 0,
                        result: None,
                    },
                    pb::OpResult {
                        err: -103,
                        result: None,
                    },
                ],
            })),
        };
        let (bytes, _) = encode_reply(&Reply::Multi(vec![op::CREATE, op::SET_DATA]), &resp);
        let mut r = Reader::new(&bytes[4..]);
        assert_eq!(r.int("xid"), Ok(9));
        assert_eq!(r.long("zxid"), Ok(100));
        assert_eq!(r.int("err"), Ok(0));
        for want in [0, -103] {
            assert_eq!(r.int("type"), Ok(op::ERROR));
            assert_eq!(r.boolean("done"), Ok(false));
            assert_eq!(r.int("err"), Ok(want));
            assert_eq!(r.int("ErrorResponse.err"), Ok(want));
        }
        assert_eq!(r.int("type"), Ok(-1));
        assert_eq!(r.boolean("done"), Ok(true));
    }

    /// addWatch answers `ErrorResponse{0}` after the header (the Java client and Curator
    /// read it); a refused addWatch is the header alone.
    #[test]
    fn add_watch_reply_carries_an_error_response_record() {
        let ok = pb::Response {
            xid: 5,
            zxid: 7,
            ..Default::default()
        };
        let (bytes, _) = encode_reply(&Reply::AddWatch, &ok);
        assert_eq!(bytes.len(), 4 + 16 + 4);
        let mut r = Reader::new(&bytes[4..]);
        assert_eq!(r.int("xid"), Ok(5));
        assert_eq!(r.long("zxid"), Ok(7));
        assert_eq!(r.int("err"), Ok(0));
        assert_eq!(r.int("ErrorResponse.err"), Ok(0));
        let refused = pb::Response {
            err: Code::NoAuth.as_i32(),
            ..ok
        };
        let (bytes, _) = encode_reply(&Reply::AddWatch, &refused);
        assert_eq!(bytes.len(), 4 + 16);
        let body = req(|w| {
            w.ustring("/a").int(1);
        });
        let d = decode_request(5, op::ADD_WATCH, &body, &mut Vec::new());
        assert_eq!(d.reply, Reply::AddWatch);
    }

    /// Random bytes as any opcode's body never panic the decoder.
    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ops: Vec<i32> = (-12..110).collect();
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let mut body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            // Bias towards plausible small lengths so decoding gets deep.
            for b in body.iter_mut().step_by(4) {
                if rng.random_bool(0.5) {
                    *b = 0;
                }
            }
            let opcode = ops[rng.random_range(0..ops.len())];
            let d = decode_request(1, opcode, &body, &mut Vec::new());
            let _ = encode_reply(&d.reply, &pb::Response::default());
        }
    }
}
