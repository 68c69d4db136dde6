//! The compact tree and the budgeted in-memory raft log, through the client: child
//! names short (stored inline) and long, values of every size class, Stat bookkeeping
//! of parents, ephemeral cleanup, all identical after restarts from the log and from a
//! snapshot; and a follower that missed more log than the leader keeps in memory
//! catches up from the leader's WAL.

use std::time::Duration;

use bytes::Bytes;
use tests::{bounded, client, eventually, init_tracing};
use zk_client::{Client, CreateOptions, Stat};
use zk_server::testing::{TestCluster, TestServer};

/// Names around the 24-byte inline limit, non-ASCII, and ones that sort differently
/// bytewise than case-insensitively.
const NAMES: [&str; 8] = [
    "b",
    "B",
    "a",
    "exactly-24-bytes-long-xx",
    "exactly-25-bytes-long-xxx",
    "a-child-name-much-longer-than-twenty-four-bytes",
    "é",
    "a0",
];

/// `(path, data, stat)` of `/t` and everything below it, children as listed.
async fn dump(c: &Client) -> Vec<(String, Bytes, Stat, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack = vec!["/t".to_string()];
    while let Some(p) = stack.pop() {
        let (data, stat) = c.get_data(&p).await.expect("get");
        let (kids, _) = c.get_children(&p).await.expect("children");
        stack.extend(kids.iter().map(|k| format!("{p}/{k}")));
        out.push((p, data, stat, kids));
    }
    out
}

async fn build(c: &Client) {
    c.create("/t", "", &CreateOptions::persistent())
        .await
        .expect("create /t");
    for (i, name) in NAMES.iter().enumerate() {
        let value = vec![b'x'; [0, 1, 23, 24, 25, 100, 1000, 100_000][i]];
        c.create(&format!("/t/{name}"), value, &CreateOptions::persistent())
            .await
            .expect("create");
    }
    for name in ["y", "x"] {
        c.create(&format!("/t/a/{name}"), name, &CreateOptions::persistent())
            .await
            .expect("grandchild");
    }
    c.delete("/t/a/y", None).await.expect("delete");
    c.set_data("/t/b", "changed", None).await.expect("set");
}

#[tokio::test]
async fn children_data_and_stats_survive_restarts_from_log_and_snapshot() {
    bounded(90, async {
        init_tracing();
        let mut s = TestServer::start_with(|cfg| cfg.snapshot_every = 1 << 40)
            .await
            .expect("start");
        let c = client(&s).await;
        build(&c).await;

        let (kids, st) = c.get_children("/t").await.expect("children");
        let mut sorted: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
        sorted.sort();
        assert_eq!(kids, sorted, "children listed in bytewise order");
        assert_eq!((st.num_children, st.cversion), (8, 8));
        let (_, a) = c.get_data("/t/a").await.expect("a");
        let (_, x) = c.get_data("/t/a/x").await.expect("x");
        assert_eq!((a.num_children, a.cversion), (1, 3), "2 creates, 1 delete");
        assert!(a.pzxid > x.czxid, "pzxid is the delete's zxid");
        let (data, st) = c.get_data("/t/a0").await.expect("a0");
        assert_eq!((data.len(), st.data_length), (100_000, 100_000));

        // An ephemeral, gone once its session closes.
        let e = client(&s).await;
        e.create("/t/a/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("eph");
        let _ = e.close().await;
        eventually(10, "the ephemeral is removed", || async {
            c.exists("/t/a/eph")
                .await
                .map(|s| s.is_none())
                .unwrap_or(false)
        })
        .await;
        let before = dump(&c).await;
        assert_eq!(before.len(), 10);
        let _ = c.close().await;

        // From the log (no snapshot yet).
        s.restart().await.expect("restart from log");
        let c = client(&s).await;
        assert_eq!(dump(&c).await, before, "after a restart from the log");
        let _ = c.close().await;
        s.stop().await;
        let dir = s.data_dir().to_path_buf();

        // From a snapshot.
        let mut s = TestServer::start_with(|cfg| {
            cfg.snapshot_every = 1;
            cfg.data_dir = dir;
        })
        .await
        .expect("start with snapshots");
        let c = client(&s).await;
        c.create("/snap", "", &CreateOptions::persistent())
            .await
            .expect("a write to snapshot");
        eventually(20, "a snapshot is on disk", || async {
            std::fs::read_dir(s.data_dir().join("snapshots"))
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .any(|e| e.file_name().to_string_lossy().ends_with(".snap"))
                })
                .unwrap_or(false)
        })
        .await;
        let _ = c.close().await;
        s.restart().await.expect("restart from the snapshot");
        let c = client(&s).await;
        assert_eq!(dump(&c).await, before, "after a restart from a snapshot");
        let _ = c.close().await;
        s.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_on_more_log_than_the_leader_keeps_in_memory() {
    bounded(120, async {
        init_tracing();
        let mut c = TestCluster::start_with(3, 0, |cfg| cfg.snapshot_every = 1 << 40)
            .await
            .expect("start");
        let leader = c.leader().expect("leader");
        let lagging = (leader + 1) % 3;
        c.stop(lagging).await;
        let w = Client::builder()
            .servers(&c.client_addr(leader))
            .session_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect");
        // 12 MiB of writes: more than the 8 MiB of log kept decoded in memory.
        let value = vec![b'v'; 512 * 1024];
        for i in 0..24 {
            w.create(
                &format!("/big{i:02}"),
                value.clone(),
                &CreateOptions::persistent(),
            )
            .await
            .expect("create");
        }
        c.restart(lagging).await.expect("restart");
        // A new session on the follower is answered once the follower applied it, so
        // only after it caught up: retry until then.
        let addr = c.client_addr(lagging);
        let mut caught_up = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while caught_up.is_none() && tokio::time::Instant::now() < deadline {
            if let Ok(r) = Client::builder()
                .servers(&addr)
                .session_timeout(Duration::from_secs(5))
                .connect()
                .await
            {
                if r.exists("/big23").await.is_ok_and(|s| s.is_some()) {
                    caught_up = Some(r);
                }
            }
        }
        let Some(r) = caught_up else {
            panic!("the follower did not catch up");
        };
        for i in 0..24 {
            let (data, _) = r.get_data(&format!("/big{i:02}")).await.expect("get");
            assert_eq!(data.len(), value.len(), "/big{i:02}");
        }
        c.shutdown().await;
    })
    .await;
}
