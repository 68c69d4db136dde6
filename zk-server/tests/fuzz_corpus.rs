//! The fuzz targets' inputs, replayed in plain `cargo test` (no nightly, no cargo-fuzz):
//! every file of the committed corpus `fuzz/corpus/<target>/` and of the crash
//! regressions `fuzz/regressions/<target>/` goes through the same entry point as the
//! fuzzer ([`zk_server::fuzzing`]), plus seeds built here from valid requests, frames,
//! log segments and snapshots, and systematic damage of them (every truncation, and
//! seeded bit flips). None may panic.
//!
//! `ZK_FUZZ_WRITE_SEEDS=1 cargo test -p zk-server --test fuzz_corpus` (re)writes the
//! built seeds into `fuzz/corpus/` as starting points for the fuzzer.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use zk_client::{Client, CreateOptions};
use zk_proto::pb;
use zk_server::fuzzing::{self, TARGETS};
use zk_server::storage::SnapshotFiles;
use zk_server::testing::TestServer;
use zk_server::zkwire::jute::{Acl, ConnectRequest, Writer};
use zk_server::zkwire::translate::op;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

fn target(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("a target")
}

/// Runs `input`, its truncations and some bit flips of it through `f`. Inputs up to
/// `EVERY_CUT` bytes are cut at every byte; longer ones at every byte of their first and
/// last 64 and at about 256 evenly spaced places between (a whole 4 MiB WAL segment cut
/// every 97 bytes, as before, took ~8 minutes of a debug-build test run; the crash
/// tests cut real logs at every byte of their last records).
fn run_damaged(f: fn(&[u8]), input: &[u8], seed: u64) {
    f(input);
    for cut in cuts(input.len()) {
        f(&input[..cut]);
    }
    let mut x = seed | 1;
    for _ in 0..64.min(input.len() * 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = input.to_vec();
        let bit = (x % (bytes.len() as u64 * 8)) as usize;
        bytes[bit / 8] ^= 1 << (bit % 8);
        f(&bytes);
    }
}

/// Inputs up to this many bytes are cut at every byte.
const EVERY_CUT: usize = 512;

/// Where [`run_damaged`] cuts an input of `len` bytes.
fn cuts(len: usize) -> Vec<usize> {
    if len <= EVERY_CUT {
        return (0..len).collect();
    }
    let step = (len / 256).max(1);
    let mut v: Vec<usize> = (0..64)
        .chain((64..len - 64).step_by(step))
        .chain(len - 64..len)
        .collect();
    v.dedup();
    v
}

fn header(xid: i32, opcode: i32) -> Writer {
    let mut w = Writer::new();
    w.int(xid).int(opcode);
    w
}

/// Valid ZooKeeper-protocol frame bodies, one per kind of request.
fn jute_seeds() -> Vec<Vec<u8>> {
    let open = [Acl::open()];
    let mut v = Vec::new();
    v.push(
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id: 0,
            password: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        }
        .encode()[4..] // the frame body, without its length prefix
            .to_vec(),
    );
    let mut w = header(1, op::CREATE);
    w.ustring("/a/new").buffer(b"data").acls(&open).int(0);
    v.push(w.into_bytes().to_vec());
    let mut w = header(2, op::CREATE2);
    w.ustring("/a/seq-").buffer(b"").acls(&open).int(3);
    v.push(w.into_bytes().to_vec());
    let mut w = header(3, op::CREATE_TTL);
    w.ustring("/ttl").buffer(b"x").acls(&open).int(5).long(1000);
    v.push(w.into_bytes().to_vec());
    let mut w = header(4, op::DELETE);
    w.ustring("/c").int(-1);
    v.push(w.into_bytes().to_vec());
    for opcode in [
        op::EXISTS,
        op::GET_DATA,
        op::GET_CHILDREN,
        op::GET_CHILDREN2,
    ] {
        let mut w = header(5, opcode);
        w.ustring("/a").boolean(true);
        v.push(w.into_bytes().to_vec());
    }
    let mut w = header(6, op::SET_DATA);
    w.ustring("/a").buffer(b"new value").int(0);
    v.push(w.into_bytes().to_vec());
    let mut w = header(7, op::SYNC);
    w.ustring("/");
    v.push(w.into_bytes().to_vec());
    v.push(header(-2, op::PING).into_bytes().to_vec());
    v.push(header(8, op::CLOSE_SESSION).into_bytes().to_vec());
    let mut w = header(9, op::MULTI);
    w.int(op::CHECK).boolean(false).int(-1);
    w.ustring("/a").int(0);
    w.int(op::CREATE).boolean(false).int(-1);
    w.ustring("/a/m").buffer(b"v").acls(&open).int(0);
    w.int(op::SET_DATA).boolean(false).int(-1);
    w.ustring("/c").buffer(b"w").int(-1);
    w.int(op::DELETE).boolean(false).int(-1);
    w.ustring("/a/b").int(-1);
    w.int(-1).boolean(true).int(-1);
    v.push(w.into_bytes().to_vec());
    let mut w = header(10, op::SET_WATCHES);
    w.long(0).strings(&["/a"]).strings(&["/c"]).strings(&["/a"]);
    v.push(w.into_bytes().to_vec());
    let mut w = header(11, op::ADD_WATCH);
    w.ustring("/a").int(1);
    v.push(w.into_bytes().to_vec());
    let mut w = header(-4, op::AUTH);
    w.int(0).ustring("digest").buffer(b"user:password");
    v.push(w.into_bytes().to_vec());
    let mut w = header(12, op::SET_ACL);
    w.ustring("/a").acls(&open).int(-1);
    v.push(w.into_bytes().to_vec());
    let mut w = header(13, op::GET_ACL);
    w.ustring("/a");
    v.push(w.into_bytes().to_vec());
    let mut w = header(14, 9999);
    w.ustring("/unknown-opcode");
    v.push(w.into_bytes().to_vec());
    v
}

fn request(xid: i64, op: pb::request::Op) -> Vec<u8> {
    pb::ClientMessage {
        kind: Some(pb::client_message::Kind::Request(pb::Request {
            xid,
            op: Some(op),
        })),
    }
    .encode_to_vec()
}

/// Valid native `ClientMessage`s.
fn native_seeds() -> Vec<Vec<u8>> {
    use pb::request::Op;
    let create = |path: &str, mode: i32| pb::CreateRequest {
        path: path.into(),
        data: Bytes::from_static(b"v"),
        mode,
        ..Default::default()
    };
    vec![
        request(1, Op::Create(create("/a/x", 0))),
        request(2, Op::Create(create("/a/e", 1))),
        request(3, Op::Create(create("/a/s-", 2))),
        request(
            4,
            Op::Delete(pb::DeleteRequest {
                path: "/c".into(),
                version: 0,
            }),
        ),
        request(
            5,
            Op::SetData(pb::SetDataRequest {
                path: "/a".into(),
                data: Bytes::from_static(b"zz"),
                version: 0,
            }),
        ),
        request(
            6,
            Op::GetData(pb::GetDataRequest {
                path: "/a".into(),
                watch: true,
            }),
        ),
        request(
            7,
            Op::Multi(pb::MultiRequest {
                ops: vec![
                    pb::Op {
                        op: Some(pb::op::Op::Create(create("/a/m", 0))),
                    },
                    pb::Op {
                        op: Some(pb::op::Op::Delete(pb::DeleteRequest {
                            path: "/a/b".into(),
                            version: -1,
                        })),
                    },
                ],
            }),
        ),
        request(8, Op::Sync(pb::SyncRequest { path: "/".into() })),
        request(
            9,
            Op::SetAcl(pb::SetAclRequest {
                path: "/a".into(),
                acl: vec![pb::Acl {
                    perms: 31,
                    scheme: "world".into(),
                    id: "anyone".into(),
                }],
                version: -1,
            }),
        ),
        pb::ClientMessage {
            kind: Some(pb::client_message::Kind::Connect(pb::ConnectRequest {
                session_id: 0,
                password: Bytes::new(),
                timeout_ms: 10_000,
                last_zxid_seen: 0,
            })),
        }
        .encode_to_vec(),
    ]
}

/// Valid paths and near misses.
fn path_seeds() -> Vec<Vec<u8>> {
    [
        "/",
        "/a",
        "/a/b/c",
        "/zookeeper",
        "/zookeeper/quota",
        "/a/",
        "//",
        "/a//b",
        "a",
        "",
        "/.",
        "/..",
        "/a/./b",
        "/a/../b",
        "/\u{0}",
        "/\u{1}",
        "/\u{fff0}",
        "/\u{d7ff}",
        "/seq-",
        "/ü/☃",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// A real node's WAL segment and snapshot file (mode byte prepended).
async fn storage_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut server = TestServer::start_with(|c| c.snapshot_every = 6)
        .await
        .expect("start");
    let c = Client::connect(&server.connect_string())
        .await
        .expect("connect");
    for i in 0..9 {
        let mode = if i % 3 == 0 {
            CreateOptions::ephemeral()
        } else {
            CreateOptions::persistent()
        };
        c.create(&format!("/n{i}"), format!("v{i}"), &mode)
            .await
            .expect("create");
    }
    c.set_data("/n1", "changed", None).await.expect("set");
    drop(c);
    // Let the snapshot builds finish (a build still running at stop would be lost).
    let applied = server
        .handle()
        .expect("running")
        .pipeline()
        .shared
        .applied_zxid()
        >> 16;
    let snap_dir = server.data_dir().join("snapshots");
    for _ in 0..500 {
        let files = SnapshotFiles::open(&snap_dir, zk_server::storage::SyncMode::Never)
            .and_then(|f| f.list())
            .unwrap_or_default();
        if files.last().is_some_and(|(i, _)| i + 6 > applied as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
    let mut wal = Vec::new();
    for seg in files_in(&server.data_dir().join("log")) {
        if seg.extension().is_some_and(|e| e == "log") {
            let bytes = fs::read(&seg).expect("read");
            // The fuzz entry decodes from index 1: take a segment that starts there, or
            // its records as single payloads.
            let records = zk_server::storage::Wal::decode_segment(
                &bytes,
                seg.file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.strip_prefix("wal-"))
                    .and_then(|s| s.parse().ok())
                    .expect("segment name"),
            )
            .expect("decode");
            for r in records.iter().take(12) {
                let mut seed = vec![1u8];
                seed.extend_from_slice(&r.data);
                wal.push(seed);
            }
            let mut seed = vec![0u8];
            seed.extend_from_slice(&bytes);
            wal.push(seed);
        }
    }
    let mut snaps = Vec::new();
    let files = SnapshotFiles::open(
        &server.data_dir().join("snapshots"),
        zk_server::storage::SyncMode::Never,
    )
    .expect("snapshots");
    for (index, _) in files.list().expect("list") {
        let s = files.load(index).expect("load");
        let mut seed = vec![0u8];
        seed.extend_from_slice(&SnapshotFiles::encode(&s.meta, &s.data).expect("encode"));
        snaps.push(seed);
        let mut seed = vec![1u8];
        seed.extend_from_slice(&s.data);
        snaps.push(seed);
    }
    assert!(!snaps.is_empty(), "a snapshot was taken");
    (wal, snaps)
}

#[test]
fn committed_corpus_and_regressions_replay_without_panics() {
    let mut total = 0;
    for (name, f) in TARGETS {
        let mut n = 0;
        for sub in ["corpus", "regressions"] {
            for file in files_in(&fuzz_dir().join(sub).join(name)) {
                let bytes = fs::read(&file).expect("read");
                f(&bytes);
                n += 1;
            }
        }
        assert!(n > 0, "fuzz/corpus/{name} holds inputs");
        println!("{name}: {n} corpus inputs replayed");
        total += n;
    }
    println!("{total} inputs replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_and_their_damage_never_panic() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let (wal, snaps) = storage_seeds().await;
        let sets: Vec<(&str, Vec<Vec<u8>>)> = vec![
            ("jute_request", jute_seeds()),
            ("native_request", native_seeds()),
            ("path", path_seeds()),
            ("wal_segment", wal),
            ("snapshot_file", snaps),
        ];
        let write = std::env::var_os("ZK_FUZZ_WRITE_SEEDS").is_some();
        for (name, seeds) in sets {
            let f = target(name);
            for (i, seed) in seeds.iter().enumerate() {
                run_damaged(f, seed, 0x9e37_79b9 + i as u64);
                if write {
                    let dir = fuzz_dir().join("corpus").join(name);
                    fs::create_dir_all(&dir).expect("mkdir");
                    fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write seed");
                }
            }
            println!(
                "{name}: {} seeds, each cut (every byte up to {EVERY_CUT} bytes) and bit-flipped",
                seeds.len()
            );
        }
    })
    .await
    .expect("bounded");
}

#[test]
fn fuzzing_module_targets_match_the_fuzz_crate() {
    // Each target has its cargo-fuzz binary.
    for (name, _) in TARGETS {
        let bin = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(bin.is_file(), "{} is missing", bin.display());
    }
    // A sanity check that the entry points do reject: damaged framing is not accepted.
    fuzzing::wal_segment(&[0, 1, 2, 3]);
    assert!(zk_server::storage::Wal::decode_segment(&[9; 40], 1).is_err());
}
