//! Peer connections under partitions that heal (issue #7's liveness event): every peer
//! link goes through a fault-injecting proxy that holds bytes while paused and delivers
//! them on resume, as a real network partition with intact sockets does.
//!
//! - A peer RPC that times out is cancelled: the caller's HTTP/2 stack sends the stream
//!   a reset. Behind a partition those resets pile up with their requests and reach the
//!   answering server all at once when it heals; the peer connection must survive that
//!   (hyper's default closes it after 20 such streams).
//! - A leader cut off from one follower by a bridge partition (the third server talks
//!   to both) must, once healed, serve reads and writes on every server again, also
//!   when the follower must catch up by a snapshot that takes a while to install.

use std::collections::BTreeMap;
use std::time::Duration;

use tests::proxy::Proxy;
use tests::{bounded, client_only, eventually, init_tracing};
use zk_client::CreateOptions;
use zk_server::raft::network::Peers;
use zk_server::raft::rpc::{PeerReply, PeerRequest};
use zk_server::testing::TestCluster;

/// A 3-voter ensemble in which node i reaches node j only through `links[(i, j)]`,
/// each node's config adjusted by `f`.
async fn proxied_cluster(
    f: &impl Fn(&mut zk_server::Config),
) -> (TestCluster, BTreeMap<(usize, usize), Proxy>) {
    let mut plan = TestCluster::plan(3, 0, f).expect("plan");
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
        plan.configs[i].peer_dial = (0..3)
            .filter(|j| *j != i)
            .map(|j| {
                (
                    plan.configs[j].peer_bind_addr(),
                    links[&(i, j)].connect_string(),
                )
            })
            .collect();
    }
    (plan.start().await.expect("start"), links)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_peer_calls_behind_a_partition_do_not_break_the_peer_connection() {
    bounded(60, async {
        init_tracing();
        let c = TestCluster::start(3, 0).await.expect("cluster");
        let target = c.peer_addr(0);
        let proxy = Proxy::start(&target).await.expect("proxy");
        let peers = Peers::with_dial([(target.clone(), proxy.connect_string())].into());
        let status = |timeout: Duration| {
            let (peers, target) = (peers.clone(), target.clone());
            async move { peers.call(&target, &PeerRequest::Status, timeout).await }
        };
        assert!(matches!(
            status(Duration::from_secs(5)).await,
            Ok(PeerReply::Status(_))
        ));
        assert_eq!(proxy.accepted_connections(), 1);

        // A partition: every call times out and is cancelled; the requests and their
        // resets wait in the network.
        proxy.pause();
        for _ in 0..60 {
            assert!(status(Duration::from_millis(5)).await.is_err());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.resume();

        // Healed: the next calls are answered, on the same connection.
        for _ in 0..5 {
            let r = status(Duration::from_secs(5)).await;
            assert!(matches!(r, Ok(PeerReply::Status(_))), "{r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            proxy.accepted_connections(),
            1,
            "the server closed the peer connection after the burst of cancelled calls"
        );
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_by_a_bridge_partition_serves_again_after_healing() {
    bounded(120, async {
        init_tracing();
        // Frequent snapshots (the log is purged at each): the server cut off from the
        // leader misses entries and must catch up by a snapshot of a few MB.
        let (c, links) = proxied_cluster(&|cfg| cfg.snapshot_every = 200).await;
        let leader = c.leader().expect("leader");
        let other = (leader + 1) % 3;
        let bridge = (leader + 2) % 3;
        let first = client_only(&c.client_addr(leader)).await;
        first
            .create("/before", "", &CreateOptions::persistent())
            .await
            .expect("write before the partition");
        let value = vec![b'x'; 1024];
        // Writes of 1 KB values through the leader; `strict`: every one must succeed.
        let writes = |from: usize, to: usize, strict: bool| {
            let (first, value) = (first.clone(), value.clone());
            async move {
                for chunk in (from..to).collect::<Vec<_>>().chunks(100) {
                    let calls = chunk.iter().map(|k| {
                        first.create(
                            &format!("/k{k:05}"),
                            value.clone(),
                            &CreateOptions::persistent(),
                        )
                    });
                    for r in futures::future::join_all(calls).await {
                        if let Err(e) = r {
                            assert!(!strict, "write through the leader: {e}");
                        }
                    }
                }
            }
        };
        writes(0, 3000, true).await;

        // The leader and `other` cannot talk; `bridge` talks to both. Held long enough
        // for many heartbeats and votes to time out behind it.
        for key in [(leader, other), (other, leader)] {
            links[&key].pause();
        }
        // The leader and the bridge commit without `other`, and snapshot.
        writes(3000, 3500, false).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for key in [(leader, other), (other, leader)] {
            links[&key].resume();
        }
        tracing::info!(leader, other, bridge, "healed");

        // Every server serves again: a write and a read through each of them.
        for i in 0..3 {
            let client = client_only(&c.client_addr(i)).await;
            let path = format!("/after-{i}");
            eventually(20, &format!("server {i} takes a write"), || async {
                matches!(
                    tokio::time::timeout(
                        Duration::from_secs(2),
                        client.create(&path, "", &CreateOptions::persistent())
                    )
                    .await,
                    Ok(Ok(_)) | Ok(Err(zk_client::Error::NodeExists { .. }))
                )
            })
            .await;
            eventually(20, &format!("server {i} serves a read"), || async {
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), client.exists("/before")).await,
                    Ok(Ok(Some(_)))
                )
            })
            .await;
        }
        for i in 0..3 {
            assert!(
                c.handle(i).expect("running").pipeline().shared.is_serving(),
                "server {i} serves"
            );
        }
        c.shutdown().await;
    })
    .await;
}
