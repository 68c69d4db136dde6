//! Randomised test: arbitrary (often invalid) commands never panic, keep every index in
//! step with the nodes, roll failed multis back exactly, and survive a snapshot.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::acl::{self, perms, Acl, Id};
use super::node::NodeKind;
use super::testkit::assert_same;
use super::txn::{ApplyResult, Command, CreateMode, TxnOp};
use super::{split_parent, DataTree};

/// Recomputes every index from the nodes and compares; checks parent/child links.
fn check_invariants(t: &DataTree) {
    let mut ephemerals: HashMap<i64, BTreeSet<String>> = HashMap::new();
    let mut containers = BTreeSet::new();
    let mut ttls = BTreeSet::new();
    assert!(t.nodes.contains_key("/"));
    for (path, node) in &t.nodes {
        if path != "/" {
            let (parent, name) = split_parent(path);
            let p = t
                .nodes
                .get(parent)
                .unwrap_or_else(|| panic!("{path} orphan"));
            assert!(p.children.contains(name), "{path} not in parent's children");
            assert!(!p.is_ephemeral(), "{path} under an ephemeral");
        }
        for c in node.children.iter() {
            assert!(
                t.nodes.contains_key(super::child_path(path, c).as_str()),
                "{path}/{c} dangling"
            );
        }
        match node.kind {
            NodeKind::Ephemeral(s) => {
                assert!(t.sessions.contains_key(&s), "{path} of closed session");
                ephemerals.entry(s).or_default().insert(path.to_string());
            }
            NodeKind::Container => {
                containers.insert(path.to_string());
            }
            NodeKind::Ttl(_) => {
                ttls.insert(path.to_string());
            }
            NodeKind::Persistent => {}
        }
    }
    assert_eq!(ephemerals, t.ephemerals);
    assert_eq!(containers, t.containers);
    assert_eq!(ttls, t.ttls);
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const PATHS: &[&str] = &[
    "/a",
    "/a/b",
    "/a/b/c",
    "/a/",
    "/b",
    "/b/",
    "/c",
    "/c/d",
    "/a/0000000000",
    "/a/0000000001",
    "/b/0000000002",
];
const ODD_PATHS: &[&str] = &[
    "/",
    "/zookeeper",
    "/zookeeper/x",
    "/a//b",
    "bad",
    "",
    "/a/b/",
];

/// An ACL: mostly open; sometimes restrictive, `auth`, or invalid.
fn random_acl(r: &mut Rng) -> Vec<Acl> {
    match r.below(10) {
        0 => vec![Acl::new(perms::ALL, "digest", "alice:h")],
        1 => vec![Acl::new(perms::READ, "world", "anyone")],
        2 => vec![Acl::new(perms::ALL, "auth", "")],
        3 => vec![Acl::new(perms::ALL, "ip", "10.0.0.0/8")],
        4 => vec![],
        _ => acl::open(),
    }
}

/// A sender's identities: none, alice, or the super user.
fn random_auth(r: &mut Rng) -> Vec<Id> {
    match r.below(4) {
        0 => vec![Id::new("digest", "alice:h")],
        1 => vec![acl::super_id()],
        _ => vec![Id::new("ip", "127.0.0.1")],
    }
}

fn random_op(r: &mut Rng) -> TxnOp {
    let odd = r.below(10) == 0;
    let path = r.pick(if odd { ODD_PATHS } else { PATHS }).to_string();
    let version = [-1, -1, -1, 0, 1, 2][r.below(6)];
    match r.below(7) {
        0 | 1 => {
            let mode = CreateMode::from_i32(r.below(7) as i32).unwrap_or(CreateMode::Persistent);
            let ttl_ms = if r.below(4) == 0 {
                [0, -1, 5, i64::MAX][r.below(4)]
            } else if mode.is_ttl() {
                50
            } else {
                0
            };
            TxnOp::Create {
                path,
                data: Bytes::from(vec![7u8; r.below(4)]),
                mode,
                ttl_ms,
                acl: if r.below(3) == 0 {
                    random_acl(r)
                } else {
                    acl::open()
                },
            }
        }
        2 => TxnOp::Delete { path, version },
        6 => TxnOp::SetAcl {
            path,
            acl: random_acl(r),
            version,
        },
        3 => TxnOp::SetData {
            path,
            data: Bytes::from_static(b"d"),
            version,
        },
        _ => TxnOp::Check { path, version },
    }
}

fn random_command(r: &mut Rng, sessions: &[i64], time_ms: i64) -> Command {
    let session = if sessions.is_empty() || r.below(8) == 0 {
        12345
    } else {
        sessions[r.below(sessions.len())]
    };
    match r.below(20) {
        0 => Command::CreateSession {
            timeout_ms: 1000,
            password: [0; 16],
        },
        1 => Command::CloseSession { session },
        2 | 3 => Command::Reap {
            path: r.pick(PATHS).to_string(),
            time_ms: time_ms + r.below(200) as i64,
        },
        4..=11 => Command::Txn {
            session,
            time_ms,
            ops: vec![random_op(r)],
            multi: false,
            auth: random_auth(r),
        },
        _ => {
            let ops = (0..r.below(4)).map(|_| random_op(r)).collect();
            Command::Txn {
                session,
                time_ms,
                ops,
                multi: true,
                auth: random_auth(r),
            }
        }
    }
}

#[test]
fn random_commands_keep_the_tree_consistent() {
    let (mut good_multis, mut failed_multis, mut good_ops, mut reaped) = (0, 0, 0, 0);
    for seed in 1..=30u64 {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut t = DataTree::new();
        let mut sessions = Vec::new();
        for zxid in 1..=300i64 {
            let cmd = random_command(&mut r, &sessions, zxid * 10);
            let before = t.clone();
            let mut events = Vec::new();
            let result = t.apply(zxid, &cmd, &mut events);
            match &result {
                ApplyResult::SessionCreated { id, .. } => sessions.push(*id),
                ApplyResult::Multi(Err(_))
                | ApplyResult::Op(Err(_))
                | ApplyResult::Reaped(false)
                | ApplyResult::SessionClosed(Err(_)) => {
                    if matches!(result, ApplyResult::Multi(_)) {
                        failed_multis += 1;
                    }
                    assert!(events.is_empty(), "{cmd:?}");
                    assert_same(&before, &t);
                }
                ApplyResult::Op(Ok(_)) => good_ops += 1,
                ApplyResult::Reaped(true) => reaped += 1,
                ApplyResult::Multi(Ok(outs)) => {
                    if outs.len() > 1 {
                        good_multis += 1;
                    }
                    if let Command::Txn { ops, .. } = &cmd {
                        assert_eq!(outs.len(), ops.len());
                    }
                }
                _ => {}
            }
            check_invariants(&t);
            if zxid % 50 == 0 {
                let back = DataTree::from_snapshot_bytes(&t.to_snapshot_bytes()).expect("loads");
                assert_same(&t, &back);
            }
        }
    }
    eprintln!("ops {good_ops}, multis ok {good_multis} / failed {failed_multis}, reaped {reaped}");
    assert!(good_ops > 100 && good_multis > 10 && failed_multis > 100 && reaped > 0);
}
