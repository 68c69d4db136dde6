//! Network partitions between real servers: every peer link goes through its own
//! fault-injecting TCP proxy (`tests::proxy`), so one server can be cut off while it
//! keeps running. The isolated leader cannot commit; the majority elects a new leader
//! and keeps working; after healing, the old leader converges and its uncommitted
//! write is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use tests::proxy::Proxy;
use tests::{bounded, client_only, eventually, init_tracing};
use zk_client::CreateOptions;
use zk_server::testing::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_cannot_commit_and_converges_after_healing() {
    bounded(120, async {
        init_tracing();
        let mut plan = TestCluster::plan(3, 0, &|_| {}).expect("plan");
        // links[(i, j)]: the proxy node i dials to reach node j.
        let mut links: BTreeMap<(usize, usize), Proxy> = BTreeMap::new();
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    let target = plan.configs[j].peer_bind_addr();
                    links.insert((i, j), Proxy::start(&target).await.expect("proxy"));
                }
            }
        }
        for i in 0..3 {
            let dial: BTreeMap<String, String> = (0..3)
                .filter(|j| *j != i)
                .map(|j| {
                    (
                        plan.configs[j].peer_bind_addr(),
                        links[&(i, j)].connect_string(),
                    )
                })
                .collect();
            plan.configs[i].peer_dial = dial;
        }
        let c = plan.start().await.expect("start");
        let old = c.leader().expect("leader");
        let on_old = client_only(&c.client_addr(old)).await;
        on_old
            .create("/before", "", &CreateOptions::persistent())
            .await
            .expect("write");

        // Cut the leader off from both followers (sockets stay open: a silent network).
        for ((i, j), p) in &links {
            if *i == old || *j == old {
                p.pause();
            }
        }
        let attempt = tokio::time::timeout(
            Duration::from_secs(3),
            on_old.create("/minority", "", &CreateOptions::persistent()),
        )
        .await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "the isolated leader committed a write: {attempt:?}"
        );

        // The majority elects a new leader and keeps working.
        let survivor = (old + 1) % 3;
        let majority = client_only(&c.client_addr(survivor)).await;
        eventually(30, "the majority commits again", || async {
            matches!(
                tokio::time::timeout(
                    Duration::from_secs(2),
                    majority.create("/majority", "", &CreateOptions::persistent())
                )
                .await,
                Ok(Ok(_)) | Ok(Err(zk_client::Error::NodeExists { .. }))
            )
        })
        .await;
        // The isolated server stops serving its clients.
        eventually(20, "the isolated server stops serving", || async {
            !c.handle(old)
                .expect("running")
                .pipeline()
                .shared
                .is_serving()
        })
        .await;

        // Heal: the old leader rejoins as a follower and converges.
        for p in links.values() {
            p.resume();
        }
        let back = client_only(&c.client_addr(old)).await;
        eventually(30, "the old leader converged", || async {
            back.exists("/majority")
                .await
                .map(|s| s.is_some())
                .unwrap_or(false)
        })
        .await;
        back.sync("/").await.expect("sync");
        assert!(back.exists("/before").await.expect("exists").is_some());
        assert!(
            back.exists("/minority").await.expect("exists").is_none(),
            "the uncommitted write is gone"
        );
        assert_ne!(c.leader(), None);
        c.shutdown().await;
    })
    .await;
}
