//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for the corpus replay
//! test that runs in plain `cargo test`: each takes arbitrary bytes and feeds them to
//! one decoder exactly as the server does, then checks what came out. The decoders
//! must never panic, whatever the bytes; these functions panic only when an invariant
//! breaks (which is then a bug, found by the fuzzer).
//!
//! | target | what runs |
//! |---|---|
//! | [`jute_request`] | ZooKeeper-protocol frame: ConnectRequest, RequestHeader + body decode, prep, apply, reply encode |
//! | [`native_request`] | protobuf `ClientMessage` decode, prep/validation, apply to a tree, reply |
//! | [`wal_segment`] | WAL segment decode (torn tail, checksums), log entry decode |
//! | [`snapshot_file`] | snapshot file decode, raft meta, tree decode and re-encode |
//! | [`path`] | path validation and the path helpers |
//!
//! Checksums stop random bytes early, so [`wal_segment`] and [`snapshot_file`] use the
//! first input byte to pick a mode that wraps the rest in valid framing and checksums:
//! that way the fuzzer also reaches the entry, meta and tree decoders behind them.

use bytes::Bytes;
use prost::Message;
use zk_proto::pb;

use crate::pipeline::{prep, reply, Prepared};
use crate::raft::log_store::check_recovery;
use crate::raft::state_machine::decode_snapshot;
use crate::storage::{SnapshotFiles, Wal, WalRecord};
use crate::tree::{ApplyResult, Command, DataTree};
use crate::zkwire::jute::{ConnectRequest, Reader};
use crate::zkwire::translate::{self, AuthInfo};

/// Largest znode value the fuzzed pipeline accepts (small, so limits are reached).
const MAX_DATA: usize = 4096;
/// The session the fuzzed requests belong to.
const SESSION_TIMEOUT_MS: u32 = 10_000;

/// A small tree with a live session and a few nodes, for requests to act on.
fn seeded_tree() -> (DataTree, i64) {
    let mut tree = DataTree::new();
    let mut events = Vec::new();
    let session = match tree.apply(
        1 << 16,
        &Command::CreateSession {
            timeout_ms: SESSION_TIMEOUT_MS,
            password: [7; 16],
        },
        &mut events,
    ) {
        ApplyResult::SessionCreated { id, .. } => id,
        other => panic!("seeding the tree: {other:?}"),
    };
    for (i, path) in ["/a", "/a/b", "/c"].iter().enumerate() {
        let req = pb::Request {
            xid: 0,
            op: Some(pb::request::Op::Create(pb::CreateRequest {
                path: (*path).to_string(),
                data: Bytes::from_static(b"seed"),
                ..Default::default()
            })),
        };
        if let Prepared::Write(cmd) = prep::prepare(session, &req, MAX_DATA) {
            tree.apply(((i as i64) + 2) << 16, &cmd, &mut events);
        }
    }
    (tree, session)
}

/// Prepares `req` as the session loop does and, for a write, applies it to `tree` and
/// builds the reply: the full path a request takes, minus raft.
fn handle(tree: &mut DataTree, session: i64, req: &pb::Request, zxid: i64) -> pb::Response {
    match prep::prepare(session, req, MAX_DATA) {
        Prepared::Write(cmd) => {
            // What goes into the log must come back out of it unchanged.
            let bytes = postcard::to_allocvec(&cmd).expect("a command encodes");
            let back: Command = postcard::from_bytes(&bytes).expect("a command decodes");
            assert_eq!(
                postcard::to_allocvec(&back).ok(),
                Some(bytes),
                "command round trip"
            );
            let ops_len = match &cmd {
                Command::Txn { ops, .. } => ops.len(),
                _ => 1,
            };
            let mut events = Vec::new();
            let result = tree.apply(zxid, &cmd, &mut events);
            reply::from_apply(req.xid, zxid, &result, ops_len)
        }
        Prepared::Rejected(resp) => resp,
        Prepared::Read | Prepared::Sync(_) | Prepared::Close | Prepared::Admin => {
            reply::ok(req.xid, zxid, pb::response::Result::Empty(pb::Empty {}))
        }
    }
}

/// A ZooKeeper-protocol frame body (after the 4-byte length), as the connection reads
/// it: first as a ConnectRequest, then as a RequestHeader and request, through prep,
/// apply and reply encoding.
pub fn jute_request(data: &[u8]) {
    let _ = ConnectRequest::decode(data);
    let mut r = Reader::new(data);
    let (Ok(xid), Ok(opcode)) = (r.int("xid"), r.int("type")) else {
        return;
    };
    let body = data.get(8..).unwrap_or_default();
    let mut auth: AuthInfo = vec![("ip".into(), "127.0.0.1".into())];
    let decoded = translate::decode_request(xid, opcode, body, &mut auth);
    assert_eq!(decoded.request.xid, i64::from(xid), "the xid is kept");
    let (mut tree, session) = seeded_tree();
    let resp = handle(&mut tree, session, &decoded.request, 100 << 16);
    let _ = translate::encode_reply(&decoded.reply, &resp);
    let _ = translate::op_name(opcode);
}

/// A protobuf `ClientMessage` as the native session stream decodes it, then its
/// request through prep, apply and reply.
pub fn native_request(data: &[u8]) {
    let Ok(msg) = pb::ClientMessage::decode(data) else {
        return;
    };
    let Some(pb::client_message::Kind::Request(req)) = msg.kind else {
        return;
    };
    let (mut tree, session) = seeded_tree();
    let resp = handle(&mut tree, session, &req, 100 << 16);
    assert_eq!(resp.xid, req.xid, "the reply carries the request's xid");
    // Applying the same request again (a retry) must not panic either.
    let _ = handle(&mut tree, session, &req, 101 << 16);
    let snap = tree.to_snapshot_bytes();
    let back = DataTree::from_snapshot_bytes(&snap).expect("a tree survives its snapshot");
    assert_eq!(back.to_snapshot_bytes(), snap, "snapshot round trip");
}

/// WAL bytes. Mode byte even: the rest is a segment file (records from index 1), decoded
/// as on open; the intact prefix must be consecutive records that re-encode to exactly
/// the leading bytes. Odd: the rest is one record's payload, decoded as a log entry.
/// In-memory log budget for the WAL target: small, so recovery both decodes the newest
/// records and keeps only the log id of older ones, as on a restart with a long log.
const FUZZ_LOG_BUDGET: usize = 256;

pub fn wal_segment(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let dir = std::path::Path::new("<fuzz>");
    if mode % 2 == 0 {
        let Ok(records) = Wal::decode_segment(rest, 1) else {
            return;
        };
        let mut consumed = 0usize;
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.index, i as u64 + 1, "records are consecutive");
            consumed += 16 + r.data.len();
        }
        assert!(consumed <= rest.len(), "records come from the input");
        let _ = check_recovery(dir, records, None, FUZZ_LOG_BUDGET);
    } else {
        let record = WalRecord {
            index: 1,
            data: rest.to_vec(),
        };
        let _ = check_recovery(dir, vec![record], None, FUZZ_LOG_BUDGET);
    }
}

/// Snapshot bytes. Mode byte 0: the rest is a whole snapshot file. 1: the rest is a
/// tree snapshot, wrapped in a valid file. Otherwise: the mode byte says how many of
/// the remaining bytes are raft meta, the rest the tree, wrapped in a valid file. A
/// tree that decodes must re-encode to a tree that decodes the same.
pub fn snapshot_file(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let file = match mode {
        0 => rest.to_vec(),
        1 => match SnapshotFiles::encode(&[], rest) {
            Ok(f) => f,
            Err(_) => return,
        },
        n => {
            let split = usize::from(*n).min(rest.len());
            let (meta, tree) = rest.split_at(split);
            match SnapshotFiles::encode(meta, tree) {
                Ok(f) => f,
                Err(_) => return,
            }
        }
    };
    if *mode == 1 {
        if let Ok(tree) = DataTree::from_snapshot_bytes(rest) {
            let again = tree.to_snapshot_bytes();
            let back = DataTree::from_snapshot_bytes(&again).expect("re-encoded tree decodes");
            assert_eq!(back.to_snapshot_bytes(), again, "tree snapshot round trip");
        }
    }
    let Ok(snap) = SnapshotFiles::decode(7, &file) else {
        return;
    };
    let _ = decode_snapshot(&snap);
}

/// A path, as clients send it (UTF-8 or not): validation, and for a valid path the
/// helpers that split and join it, checked against each other.
pub fn path(data: &[u8]) {
    let Ok(p) = std::str::from_utf8(data) else {
        return;
    };
    for sequential in [false, true] {
        if zk_proto::path::validate(p, sequential).is_err() {
            continue;
        }
        let _ = zk_proto::path::is_reserved(p);
        if p == "/" {
            continue;
        }
        let parent = zk_proto::path::parent(p).expect("a valid path has a parent");
        let base = zk_proto::path::basename(p);
        if !sequential {
            assert!(!base.is_empty(), "{p:?}: empty basename");
            assert_eq!(
                zk_proto::path::join(parent, base),
                p,
                "{p:?}: split then join"
            );
            assert!(
                zk_proto::path::validate(parent, false).is_ok(),
                "{p:?}: its parent {parent:?} is invalid"
            );
        }
    }
    // The server's own check, as a create would run it.
    let req = pb::Request {
        xid: 1,
        op: Some(pb::request::Op::Create(pb::CreateRequest {
            path: p.to_string(),
            ..Default::default()
        })),
    };
    let (mut tree, session) = seeded_tree();
    let _ = handle(&mut tree, session, &req, 100 << 16);
}

/// A fuzz entry point: arbitrary bytes in, a panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus directory names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("jute_request", jute_request),
    ("native_request", native_request),
    ("wal_segment", wal_segment),
    ("snapshot_file", snapshot_file),
    ("path", path),
];
