//! Snapshots and recovery through a real server: the tree is snapshotted every N applied
//! operations, the log before it is removed, and a restart (snapshot + log replay) brings
//! back exactly the same tree, sessions included. (kill -9 and log corruption are in
//! `zk-server/tests/crash.rs`, against the real binary.)

use std::path::Path;

use bytes::Bytes;
use tests::{bounded, client, init_tracing};
use zk_client::{CreateMode, CreateOptions};
use zk_server::testing::TestServer;

fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn snapshot_purge_and_restart_restore_the_same_tree() {
    bounded(60, async {
        init_tracing();
        let mut s = TestServer::start_with(|c| {
            c.snapshot_every = 50;
            c.log_segment_bytes = 4096;
        })
        .await
        .expect("start");
        let c = client(&s).await;
        c.create("/d", "", &CreateOptions::persistent())
            .await
            .expect("create");
        for i in 0..300 {
            c.create(
                &format!("/d/n{i:03}"),
                vec![b'v'; 100],
                &CreateOptions::persistent(),
            )
            .await
            .expect("create");
        }
        for i in 0..300 {
            if i % 3 == 0 {
                c.set_data(&format!("/d/n{i:03}"), format!("updated {i}"), None)
                    .await
                    .expect("set");
            }
        }
        let (seq, _) = c
            .create(
                "/d/seq-",
                "",
                &CreateOptions::new(CreateMode::PersistentSequential),
            )
            .await
            .expect("seq");
        c.create("/d/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("eph");
        let before: Vec<_> = {
            let (mut kids, st) = c.get_children("/d").await.expect("children");
            kids.sort();
            let mut all = vec![("/d".to_string(), Bytes::new(), st)];
            for k in kids {
                let p = format!("/d/{k}");
                let (data, st) = c.get_data(&p).await.expect("get");
                all.push((p, data, st));
            }
            all
        };

        let snapshots = files(&s.data_dir().join("snapshots"), ".snap");
        assert!(!snapshots.is_empty(), "a snapshot was taken");
        let segments = files(&s.data_dir().join("log"), ".log");
        assert!(
            !segments.iter().any(|f| f == "wal-00000000000000000000.log"),
            "segments covered by the snapshot are removed: {segments:?}"
        );

        s.restart().await.expect("restart");
        let c2 = client(&s).await;
        for (p, data, st) in &before {
            let got = c2.get_data(p).await.expect("get after restart");
            assert_eq!(&got.0, data, "{p}");
            if p != "/d" {
                assert_eq!(&got.1, st, "{p}: Stat survives exactly");
            }
        }
        // Sequence numbers continue from the restored cversion.
        let (seq2, _) = c2
            .create(
                "/d/seq-",
                "",
                &CreateOptions::new(CreateMode::PersistentSequential),
            )
            .await
            .expect("seq");
        assert!(seq2 > seq, "{seq2} after {seq}");
        // The first session survived the restart: its ephemeral is there, and it
        // reconnects to the same session.
        assert!(c2.exists("/d/eph").await.expect("exists").is_some());
        tests::eventually(10, "the first client reconnects", || async {
            c.exists("/d/eph").await.is_ok()
        })
        .await;
        let (_, st) = c.get_data("/d/eph").await.expect("get");
        assert_eq!(st.ephemeral_owner, c.session_id());
    })
    .await;
}

/// Snapshots are scheduled by applied operations (ZooKeeper's snapCount), not by raft
/// entries: pipelined writes are batched many to an entry, so 600 concurrent creates
/// make far fewer than 200 entries, yet `--snapshot-every 200` must snapshot (and so
/// bound the log kept in memory).
#[tokio::test]
async fn pipelined_writes_trigger_snapshots_by_operation_count() {
    bounded(60, async {
        init_tracing();
        let s = TestServer::start_with(|c| c.snapshot_every = 200)
            .await
            .expect("start");
        let c = client(&s).await;
        c.create("/p", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let creates = (0..600).map(|i| {
            let c = c.clone();
            async move {
                c.create(&format!("/p/n{i:03}"), "v", &CreateOptions::persistent())
                    .await
            }
        });
        for r in futures::future::join_all(creates).await {
            r.expect("create");
        }
        let dir = s.data_dir().join("snapshots");
        tests::eventually(10, "a snapshot after 600 operations", || {
            let found = !files(&dir, ".snap").is_empty();
            async move { found }
        })
        .await;
    })
    .await;
}
