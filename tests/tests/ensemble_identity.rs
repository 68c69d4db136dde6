//! A server takes part only in its own ensemble's raft. Two ensembles whose address
//! lists overlap (a port picked twice on a busy test machine, a server moved to a new
//! address that another ensemble's stale configuration still names) must not merge: a
//! fresh server reached by another ensemble's members stays out of it, and joins its
//! own ensemble when that one starts.

use std::time::Duration;

use tests::{bounded, client_only as client, eventually, init_tracing};
use zk_client::{Client, CreateOptions};
use zk_server::testing::TestCluster;

/// Creates `path` (true also if an earlier attempt already did).
async fn created(c: &Client, path: &str) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            c.create(path, "", &CreateOptions::persistent())
        )
        .await,
        Ok(Ok(_)) | Ok(Err(zk_client::Error::NodeExists { .. }))
    )
}

fn initialized(h: &zk_server::ServerHandle) -> bool {
    let m = h.pipeline().raft.metrics().borrow().clone();
    m.membership_config.membership().voter_ids().count() > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_stays_out_of_another_ensemble_that_names_its_address() {
    bounded(120, async {
        init_tracing();
        // Ensemble A: only its server 2 runs for now (waiting for a quorum to form).
        let plan_a = TestCluster::plan(3, 0, &|_| {}).expect("plan A");
        let a2_peer = plan_a.configs[1].peer_addr.clone().expect("peer addr");
        let a2 = zk_server::start(plan_a.configs[1].clone())
            .await
            .expect("start A's server 2");

        // Ensemble B names A's server 2 as its own server 2 (B's server 2 never runs).
        let mut plan_b = TestCluster::plan(3, 0, &|_| {}).expect("plan B");
        for cfg in &mut plan_b.configs {
            cfg.peers.insert(2, a2_peer.clone());
        }
        let b1 = zk_server::start(plan_b.configs[0].clone())
            .await
            .expect("start B's server 1");
        let b3 = zk_server::start(plan_b.configs[2].clone())
            .await
            .expect("start B's server 3");

        // B forms from its servers 1 and 3 and commits a write.
        let b_connect = format!("{},{}", b1.connect_string(), b3.connect_string());
        let b = client(&b_connect).await;
        eventually(30, "B commits without its server 2", || async {
            created(&b, "/in-b").await
        })
        .await;
        // Give B's leader time to reach (and be refused by) A's server 2.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !initialized(&a2),
            "A's server 2 joined ensemble B: {:?}",
            a2.pipeline().raft.metrics().borrow().membership_config
        );

        // A's servers 1 and 3 start: A forms with its server 2, which serves A's data.
        let a1 = zk_server::start(plan_a.configs[0].clone())
            .await
            .expect("start A's server 1");
        let a3 = zk_server::start(plan_a.configs[2].clone())
            .await
            .expect("start A's server 3");
        let a = client(&a1.connect_string()).await;
        eventually(30, "A commits", || async { created(&a, "/in-a").await }).await;
        let on_a2 = client(&a2.connect_string()).await;
        on_a2.sync("/").await.expect("sync on A's server 2");
        assert!(on_a2.exists("/in-a").await.expect("exists").is_some());
        assert!(
            on_a2.exists("/in-b").await.expect("exists").is_none(),
            "A's server 2 holds B's data"
        );
        for c in [a, b, on_a2] {
            c.close().await.ok();
        }
        for h in [a1, a2, a3, b1, b3] {
            h.shutdown().await;
        }
    })
    .await;
}
