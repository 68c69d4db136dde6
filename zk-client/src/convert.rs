//! Conversions between the wire messages (`zk_proto::pb`) and the client's types. The
//! only place that knows both; chroot handling of returned paths happens here too.

use bytes::Bytes;
use zk_proto::pb;
use zk_proto::Code;

use crate::chroot::Chroot;
use crate::multi::{Op, OpResult, ReadOp, ReadResult};
use crate::types::{
    Acl, CreateMode, CreateOptions, EventType, Perms, SessionState, Stat, WatchedEvent, WatcherType,
};

impl From<pb::Stat> for Stat {
    fn from(s: pb::Stat) -> Self {
        Stat {
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
}

/// A stat that may be absent on the wire (proto3 messages are optional); absent is zero.
pub(crate) fn stat(s: Option<pb::Stat>) -> Stat {
    s.map(Stat::from).unwrap_or_default()
}

pub(crate) fn create_mode(mode: CreateMode) -> pb::CreateMode {
    match mode {
        CreateMode::Persistent => pb::CreateMode::Persistent,
        CreateMode::Ephemeral => pb::CreateMode::Ephemeral,
        CreateMode::PersistentSequential => pb::CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential => pb::CreateMode::EphemeralSequential,
        CreateMode::Container => pb::CreateMode::Container,
        CreateMode::PersistentWithTtl => pb::CreateMode::PersistentWithTtl,
        CreateMode::PersistentSequentialWithTtl => pb::CreateMode::PersistentSequentialWithTtl,
    }
}

/// `version: None` is ZooKeeper's -1 (any version).
pub(crate) fn version(v: Option<i32>) -> i32 {
    v.unwrap_or(-1)
}

pub(crate) fn create_request(
    server_path: String,
    data: Bytes,
    options: &CreateOptions,
) -> pb::CreateRequest {
    let ttl_ms = options
        .ttl
        .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    pb::CreateRequest {
        path: server_path,
        data,
        mode: create_mode(options.mode) as i32,
        ttl_ms,
        acl: acl_to_pb(&options.acl),
    }
}

pub(crate) fn acl_to_pb(acl: &[Acl]) -> Vec<pb::Acl> {
    acl.iter()
        .map(|a| pb::Acl {
            perms: a.perms.0,
            scheme: a.scheme.clone(),
            id: a.id.clone(),
        })
        .collect()
}

pub(crate) fn acl_from_pb(acl: Vec<pb::Acl>) -> Vec<Acl> {
    acl.into_iter()
        .map(|a| Acl::new(Perms(a.perms), a.scheme, a.id))
        .collect()
}

pub(crate) fn watcher_type(kind: WatcherType) -> pb::WatcherType {
    match kind {
        WatcherType::Children => pb::WatcherType::Children,
        WatcherType::Data => pb::WatcherType::Data,
        WatcherType::Any => pb::WatcherType::Any,
    }
}

/// The event type of a wire event; `None` for values this client does not know.
pub(crate) fn event_type(value: i32) -> Option<EventType> {
    Some(match pb::EventType::try_from(value).ok()? {
        pb::EventType::NodeCreated => EventType::NodeCreated,
        pb::EventType::NodeDeleted => EventType::NodeDeleted,
        pb::EventType::NodeDataChanged => EventType::NodeDataChanged,
        pb::EventType::NodeChildrenChanged => EventType::NodeChildrenChanged,
        pb::EventType::DataWatchRemoved => EventType::DataWatchRemoved,
        pb::EventType::ChildWatchRemoved => EventType::ChildWatchRemoved,
        pb::EventType::PersistentWatchRemoved => EventType::PersistentWatchRemoved,
        pb::EventType::Unspecified => return None,
    })
}

/// A node event as the user sees it (chroot stripped).
pub(crate) fn watched_event(event: &pb::WatchEvent, chroot: &Chroot) -> Option<WatchedEvent> {
    Some(WatchedEvent {
        event_type: event_type(event.event_type)?,
        state: SessionState::Connected,
        path: chroot.strip(&event.path),
        zxid: event.zxid,
    })
}

/// A multi op on the wire (paths already validated by the caller).
pub(crate) fn op(op: &Op, chroot: &Chroot) -> pb::Op {
    let op = match op {
        Op::Create {
            path,
            data,
            options,
        } => pb::op::Op::Create(create_request(chroot.apply(path), data.clone(), options)),
        Op::Delete { path, version: v } => pb::op::Op::Delete(pb::DeleteRequest {
            path: chroot.apply(path),
            version: version(*v),
        }),
        Op::SetData {
            path,
            data,
            version: v,
        } => pb::op::Op::SetData(pb::SetDataRequest {
            path: chroot.apply(path),
            data: data.clone(),
            version: version(*v),
        }),
        Op::Check { path, version: v } => pb::op::Op::Check(pb::CheckRequest {
            path: chroot.apply(path),
            version: version(*v),
        }),
    };
    pb::Op { op: Some(op) }
}

/// One multi result. `request` is the op it answers (to tell a set_data stat from a
/// check). Non-OK codes become [`OpResult::Error`].
pub(crate) fn op_result(result: pb::OpResult, request: Option<&Op>, chroot: &Chroot) -> OpResult {
    let code = Code::from_i32(result.err);
    if !code.is_ok() {
        return OpResult::Error(code);
    }
    match (request, result.result) {
        (_, Some(pb::op_result::Result::Create(c))) => OpResult::Created {
            path: chroot.strip(&c.path),
            stat: stat(c.stat),
        },
        (Some(Op::Create { path, .. }), _) => OpResult::Created {
            path: path.clone(),
            stat: Stat::default(),
        },
        (Some(Op::Delete { .. }), _) => OpResult::Deleted,
        (Some(Op::Check { .. }), _) => OpResult::Checked,
        (Some(Op::SetData { .. }), r) | (None, r @ Some(pb::op_result::Result::Stat(_))) => {
            let s = match r {
                Some(pb::op_result::Result::Stat(s)) => stat(s.stat),
                _ => Stat::default(),
            };
            OpResult::DataSet { stat: s }
        }
        (None, _) => OpResult::Checked,
    }
}

/// A multi_read op on the wire.
pub(crate) fn read_op(op: &ReadOp, chroot: &Chroot) -> pb::ReadOp {
    let op = match op {
        ReadOp::GetData(p) => pb::read_op::Op::GetData(pb::GetDataRequest {
            path: chroot.apply(p),
            watch: false,
        }),
        ReadOp::GetChildren(p) => pb::read_op::Op::GetChildren(pb::GetChildrenRequest {
            path: chroot.apply(p),
            watch: false,
        }),
    };
    pb::ReadOp { op: Some(op) }
}

/// One multi_read result.
pub(crate) fn read_result(result: pb::ReadResult, request: Option<&ReadOp>) -> ReadResult {
    let code = Code::from_i32(result.err);
    if !code.is_ok() {
        return ReadResult::Error(code);
    }
    match (result.result, request) {
        (Some(pb::read_result::Result::GetData(d)), _) => ReadResult::Data {
            data: d.data,
            stat: stat(d.stat),
        },
        (Some(pb::read_result::Result::GetChildren(c)), _) => ReadResult::Children {
            children: c.children,
            stat: stat(c.stat),
        },
        (None, Some(ReadOp::GetChildren(_))) => ReadResult::Children {
            children: Vec::new(),
            stat: Stat::default(),
        },
        (None, _) => ReadResult::Data {
            data: Bytes::new(),
            stat: Stat::default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pstat(version: i32) -> pb::Stat {
        pb::Stat {
            version,
            czxid: 7,
            ..Default::default()
        }
    }

    #[test]
    fn stat_and_modes() {
        let s = Stat::from(pstat(3));
        assert_eq!((s.version, s.czxid), (3, 7));
        assert_eq!(stat(None), Stat::default());
        let opts = CreateOptions::persistent()
            .sequential(true)
            .with_ttl(Duration::from_millis(1500));
        let req = create_request("/a".into(), Bytes::from_static(b"x"), &opts);
        assert_eq!(req.mode, pb::CreateMode::PersistentSequentialWithTtl as i32);
        assert_eq!(req.ttl_ms, 1500);
        assert_eq!(create_mode(CreateMode::Container) as i32, 4);
        assert_eq!(create_mode(CreateMode::EphemeralSequential) as i32, 3);
        assert_eq!(version(None), -1);
        assert_eq!(watcher_type(WatcherType::Any) as i32, 3);
    }

    #[test]
    fn events_strip_the_chroot() {
        let chroot = Chroot::new(Some("/app")).expect("valid");
        let e = pb::WatchEvent {
            event_type: pb::EventType::NodeDeleted as i32,
            path: "/app/x".into(),
            zxid: 9,
        };
        let w = watched_event(&e, &chroot).expect("known");
        assert_eq!(
            (w.event_type, w.path.as_str(), w.zxid),
            (EventType::NodeDeleted, "/x", 9)
        );
        assert!(event_type(0).is_none());
        assert!(event_type(42).is_none());
    }

    #[test]
    fn multi_results_map_per_op() {
        let chroot = Chroot::new(Some("/app")).expect("valid");
        let create = Op::create("/a", "", CreateOptions::persistent());
        let r = op_result(
            pb::OpResult {
                err: 0,
                result: Some(pb::op_result::Result::Create(pb::CreateResponse {
                    path: "/app/a".into(),
                    stat: Some(pstat(0)),
                })),
            },
            Some(&create),
            &chroot,
        );
        assert!(matches!(r, OpResult::Created { ref path, .. } if path == "/a"));
        let set = Op::set_data("/a", "", None);
        let r = op_result(
            pb::OpResult {
                err: 0,
                result: Some(pb::op_result::Result::Stat(pb::StatResponse {
                    stat: Some(pstat(4)),
                })),
            },
            Some(&set),
            &chroot,
        );
        assert!(matches!(r, OpResult::DataSet { stat } if stat.version == 4));
        let empty = |err| pb::OpResult {
            err,
            result: Some(pb::op_result::Result::Empty(pb::Empty {})),
        };
        assert_eq!(
            op_result(empty(0), Some(&Op::delete("/a", None)), &chroot),
            OpResult::Deleted
        );
        assert_eq!(
            op_result(empty(0), Some(&Op::check("/a", None)), &chroot),
            OpResult::Checked
        );
        assert_eq!(
            op_result(empty(-103), Some(&Op::check("/a", None)), &chroot),
            OpResult::Error(Code::BadVersion)
        );
        let wire = op(&Op::check("/a", Some(2)), &chroot);
        assert_eq!(
            wire.op,
            Some(pb::op::Op::Check(pb::CheckRequest {
                path: "/app/a".into(),
                version: 2
            }))
        );
    }

    #[test]
    fn read_results_map_per_op() {
        let r = read_result(
            pb::ReadResult {
                err: 0,
                result: Some(pb::read_result::Result::GetChildren(
                    pb::GetChildrenResponse {
                        children: vec!["x".into()],
                        stat: Some(pstat(1)),
                    },
                )),
            },
            None,
        );
        assert!(
            matches!(r, ReadResult::Children { ref children, .. } if children == &["x".to_string()])
        );
        let r = read_result(
            pb::ReadResult {
                err: -101,
                result: None,
            },
            None,
        );
        assert_eq!(r, ReadResult::Error(Code::NoNode));
    }
}
