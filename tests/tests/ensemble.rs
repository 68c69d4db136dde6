//! A replicated ensemble (in-process nodes on loopback, `zk_server::testing::TestCluster`)
//! through the client: replication, observers, FIFO order on followers, leader failure
//! under load, catch-up after restart and after a wiped data dir (snapshot install),
//! session expiry on every replica, membership changes, a minority that cannot commit,
//! and zxids that never go backwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tests::{bounded, eventually, init_tracing};
use zk_client::{Client, CreateOptions, EventType};
use zk_server::testing::TestCluster;

async fn cluster(voters: u64, observers: u64) -> TestCluster {
    init_tracing();
    TestCluster::start(voters, observers)
        .await
        .expect("start cluster")
}

/// A client whose server list starts at node `first` (so clients spread over nodes).
async fn client_at(c: &TestCluster, first: usize) -> Client {
    let n = c.len();
    let servers: Vec<String> = (0..n).map(|k| c.client_addr((first + k) % n)).collect();
    Client::builder()
        .servers(&servers.join(","))
        .session_timeout(Duration::from_secs(2))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .expect("connect")
}

/// A client that talks only to node `i`.
async fn client_only(c: &TestCluster, i: usize) -> Client {
    Client::builder()
        .servers(&c.client_addr(i))
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_every_server_are_seen_everywhere_after_sync() {
    bounded(60, async {
        let c = cluster(3, 1).await;
        let clients: Vec<Client> =
            futures::future::join_all((0..4).map(|i| client_only(&c, i))).await;
        for (i, cl) in clients.iter().enumerate() {
            cl.create(
                &format!("/from-{i}"),
                format!("v{i}"),
                &CreateOptions::persistent(),
            )
            .await
            .unwrap_or_else(|e| panic!("write through node {i}: {e}"));
        }
        for (j, cl) in clients.iter().enumerate() {
            cl.sync("/").await.expect("sync");
            for i in 0..4 {
                let (data, _) = cl
                    .get_data(&format!("/from-{i}"))
                    .await
                    .unwrap_or_else(|e| panic!("node {j} reading /from-{i}: {e}"));
                assert_eq!(data, Bytes::from(format!("v{i}")));
            }
        }
        // Roles as the ensemble reports them.
        let status = clients[3].cluster_status().await.expect("status");
        let roles: Vec<&str> = status.members.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles.iter().filter(|r| **r == "leader").count(),
            1,
            "{roles:?}"
        );
        assert_eq!(
            roles.iter().filter(|r| **r == "follower").count(),
            2,
            "{roles:?}"
        );
        assert_eq!(
            roles.iter().filter(|r| **r == "observer").count(),
            1,
            "{roles:?}"
        );
        assert!(status.members.iter().all(|m| m.lag < 100), "{status:?}");
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_session_reads_its_own_writes_in_order() {
    bounded(60, async {
        let c = cluster(3, 0).await;
        let leader = c.leader().expect("leader");
        let follower = (leader + 1) % 3;
        let cl = client_only(&c, follower).await;
        cl.create("/o", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let mut futs: Vec<futures::future::BoxFuture<'_, i32>> = Vec::new();
        for i in 0..30 {
            let (a, b) = (cl.clone(), cl.clone());
            futs.push(Box::pin(async move {
                a.set_data("/o", i.to_string(), None)
                    .await
                    .expect("write")
                    .version
            }));
            futs.push(Box::pin(async move {
                b.get_data("/o").await.expect("read").1.version
            }));
        }
        let versions = futures::future::join_all(futs).await;
        for (i, pair) in versions.chunks(2).enumerate() {
            assert_eq!(pair, [i as i32 + 1, i as i32 + 1], "pair {i} on a follower");
        }
        // Its own ephemeral, via a follower, carries its session id.
        let (_, st) = cl
            .create("/mine", "", &CreateOptions::ephemeral())
            .await
            .expect("eph");
        assert_eq!(st.ephemeral_owner, cl.session_id());
        c.shutdown().await;
    })
    .await;
}

/// A follower (or observer) answers a write it forwarded only once it has applied the
/// write itself: right after the answer, any other session on that server reads it
/// (not only the writer, whose reads queue behind its writes anyway). Writes from the
/// leader's own session interleave, so commits keep advancing while these are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_write_is_readable_on_its_server_as_soon_as_it_is_answered() {
    bounded(90, async {
        let c = cluster(3, 1).await;
        let leader = c.leader().expect("leader");
        let busy = client_only(&c, leader).await;
        busy.create("/busy", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let noise = {
            let (busy, stop) = (busy.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    busy.set_data("/busy", i.to_string(), None)
                        .await
                        .expect("leader write");
                    i += 1;
                }
            })
        };
        for node in (0..c.len()).filter(|n| *n != leader) {
            let writer = client_only(&c, node).await;
            let reader = client_only(&c, node).await;
            let path = format!("/ryw-{node}");
            writer
                .create(&path, "0", &CreateOptions::persistent())
                .await
                .expect("create");
            for i in 1..=60 {
                let st = writer
                    .set_data(&path, i.to_string(), None)
                    .await
                    .expect("set through a non-leader");
                let (data, seen) = reader.get_data(&path).await.expect("read");
                assert_eq!(
                    (data, seen.version),
                    (Bytes::from(i.to_string()), st.version),
                    "node {node}: another session read an older value right after write {i} was answered"
                );
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        noise.await.expect("noise task");
        c.shutdown().await;
    })
    .await;
}

/// Followers forward writes on one ordered stream with several batches in flight, and
/// the leader queues them with its own writes: every session's pipelined writes must
/// still apply in the order sent, while sessions on both followers and the leader write
/// at once. Conditional sets with the expected version fail with BadVersion if any two
/// of one session's writes swap; reads queued between them see their own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_writes_from_sessions_on_every_server_keep_each_sessions_order() {
    bounded(90, async {
        let c = cluster(3, 0).await;
        const SESSIONS_PER_SERVER: usize = 4;
        const WRITES: i32 = 40;
        let mut clients = Vec::new();
        for node in 0..3 {
            for k in 0..SESSIONS_PER_SERVER {
                clients.push((node, k, client_only(&c, node).await));
            }
        }
        let runs = clients.iter().map(|(node, k, cl)| async move {
            let path = format!("/order-{node}-{k}");
            cl.create(&path, "", &CreateOptions::persistent())
                .await
                .expect("create");
            // Everything is queued at call time, in this order, before any reply.
            let mut futs: Vec<futures::future::BoxFuture<'_, (i32, i32)>> = Vec::new();
            for i in 0..WRITES {
                let (a, b) = (cl.clone(), cl.clone());
                let p = path.clone();
                futs.push(Box::pin(async move {
                    let st = a
                        .set_data(&p, i.to_string(), Some(i))
                        .await
                        .unwrap_or_else(|e| panic!("{p}: write {i} out of order: {e}"));
                    (st.version, i + 1)
                }));
                let p = path.clone();
                futs.push(Box::pin(async move {
                    let (data, st) = b.get_data(&p).await.expect("read");
                    assert_eq!(data, bytes::Bytes::from(i.to_string()), "{p}: read {i}");
                    (st.version, i + 1)
                }));
                let p = path.clone();
                let s = cl.clone();
                futs.push(Box::pin(async move {
                    let (name, _) = s
                        .create(
                            &format!("{p}/seq-"),
                            "",
                            &CreateOptions::persistent().sequential(true),
                        )
                        .await
                        .expect("sequential create");
                    let n: i32 = name
                        .rsplit('-')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .expect("sequence number");
                    (n, i)
                }));
            }
            for (got, want) in futures::future::join_all(futs).await {
                assert_eq!(got, want, "{path}: a write applied out of order");
            }
        });
        futures::future::join_all(runs).await;
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failure_under_load_loses_no_acknowledged_write() {
    bounded(90, async {
        let mut c = cluster(3, 0).await;
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        let mut writers = Vec::new();
        for w in 0..3 {
            let cl = client_at(&c, w).await;
            cl.create(&format!("/eph-{w}"), "", &CreateOptions::ephemeral())
                .await
                .expect("eph");
            clients.push(cl.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let path = format!("/w{w}-{i}");
                    match cl.create(&path, "v", &CreateOptions::persistent()).await {
                        Ok(_) => acked.lock().expect("lock").push(path),
                        Err(e) if e.code() == zk_client::Code::NodeExists => {
                            // A retried create whose first attempt had landed.
                            acked.lock().expect("lock").push(path);
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                    i += 1;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let before = acked.lock().expect("lock").len();
        let old_leader = c.leader().expect("leader");
        c.stop(old_leader).await;
        c.wait_for_leader(Duration::from_secs(20))
            .await
            .expect("new leader");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.expect("writer");
        }
        let acked = acked.lock().expect("lock").clone();
        assert!(
            acked.len() > before,
            "writes resumed after the failover ({before} -> {})",
            acked.len()
        );

        let survivor = (old_leader + 1) % 3;
        let check = client_only(&c, survivor).await;
        check.sync("/").await.expect("sync");
        for path in &acked {
            assert!(
                check.exists(path).await.expect("exists").is_some(),
                "acknowledged {path} lost"
            );
        }
        for (w, client) in clients.iter().enumerate() {
            let st = check.exists(&format!("/eph-{w}")).await.expect("exists");
            assert_eq!(
                st.map(|s| s.ephemeral_owner),
                Some(client.session_id()),
                "session {w} survived the failover with its ephemeral"
            );
        }
        // The old leader rejoins and catches up.
        c.restart(old_leader).await.expect("restart");
        let back = client_only(&c, old_leader).await;
        back.sync("/").await.expect("sync");
        let last = acked.last().expect("some writes");
        assert!(back.exists(last).await.expect("exists").is_some());
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_and_wiped_servers_catch_up() {
    bounded(90, async {
        init_tracing();
        let mut c = TestCluster::start_with(3, 0, |cfg| cfg.snapshot_every = 20)
            .await
            .expect("start");
        let leader = c.leader().expect("leader");
        let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
        let w = client_only(&c, leader).await;
        for i in 0..50 {
            w.create(&format!("/n{i}"), "x", &CreateOptions::persistent())
                .await
                .expect("create");
        }
        c.stop(a).await;
        for i in 50..150 {
            w.create(&format!("/n{i}"), "x", &CreateOptions::persistent())
                .await
                .expect("create");
        }
        c.restart(a).await.expect("restart");
        c.wipe_and_restart(b).await.expect("wipe");
        for node in [a, b] {
            let r = client_only(&c, node).await;
            eventually(20, "the node caught up", || async {
                r.exists("/n149")
                    .await
                    .map(|s| s.is_some())
                    .unwrap_or(false)
            })
            .await;
            let (kids, _) = r.get_children("/").await.expect("children");
            assert_eq!(
                kids.iter().filter(|k| k.starts_with('n')).count(),
                150,
                "node {node}"
            );
        }
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_is_decided_by_the_leader_for_every_replica() {
    bounded(60, async {
        let c = cluster(3, 1).await;
        let leader = c.leader().expect("leader");
        let follower = (leader + 1) % 3;
        // A live session on a follower keeps its ephemeral across many timeouts: its
        // heartbeats reach the leader through the follower.
        let proxy = tests::proxy::Proxy::start(&c.client_addr(follower))
            .await
            .expect("proxy");
        let owner = Client::builder()
            .servers(&proxy.connect_string())
            .session_timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect");
        owner
            .create("/lease", "", &CreateOptions::ephemeral())
            .await
            .expect("eph");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            owner.exists("/lease").await.expect("exists").is_some(),
            "a live session does not expire"
        );
        // Watchers on every server.
        let mut watchers = Vec::new();
        for i in 0..4 {
            let cl = client_only(&c, i).await;
            let (st, w) = cl.exists_and_watch("/lease").await.expect("watch");
            assert!(st.is_some());
            watchers.push((cl, w));
        }
        // The owner is cut off from its server without closing its session.
        proxy.reject(true);
        proxy.cut();
        for (i, (cl, w)) in watchers.into_iter().enumerate() {
            let ev = tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .expect("expired");
            assert_eq!(ev.event_type, EventType::NodeDeleted, "node {i}");
            assert!(cl.exists("/lease").await.expect("exists").is_none());
        }
        drop(owner);
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_grows_shrinks_and_promotes_under_load() {
    bounded(120, async {
        let mut c = cluster(3, 0).await;
        // Clients start on node 3, which stays a member throughout.
        let admin = client_at(&c, 2).await;
        let writer = client_at(&c, 2).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (w, s) = (writer.clone(), stop.clone());
        let load = tokio::spawn(async move {
            let mut ok = 0u64;
            let mut i = 0u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if w.create(&format!("/load-{i}"), "", &CreateOptions::persistent())
                    .await
                    .is_ok()
                {
                    ok += 1;
                }
                i += 1;
            }
            ok
        });
        // Two new servers join as observers by themselves...
        let n4 = c.add_node(true).await.expect("node 4");
        let n5 = c.add_node(true).await.expect("node 5");
        eventually(20, "observers joined", || async {
            admin
                .cluster_status()
                .await
                .map(|s| s.members.iter().filter(|m| m.role == "observer").count() == 2)
                .unwrap_or(false)
        })
        .await;
        // Bad input changes nothing: a dead address, or an address of another server.
        let dead = format!(
            "127.0.0.1:{}",
            zk_server::testing::free_port().expect("port")
        );
        let e = admin
            .add_voter(9, &dead)
            .await
            .expect_err("nobody answers there");
        assert_eq!(e.code(), zk_client::Code::BadArguments);
        assert!(e.to_string().contains("does not answer"), "{e}");
        let e = admin
            .add_voter(9, &c.peer_addr(n4))
            .await
            .expect_err("that is server 4");
        assert_eq!(e.code(), zk_client::Code::BadArguments);
        assert!(e.to_string().contains("server 4"), "{e}");
        let s = admin.cluster_status().await.expect("status");
        assert!(s.members.iter().all(|m| m.id != 9), "{s:?}");
        // ...and are promoted: 3 -> 5 voters.
        admin
            .add_voter(4, &c.peer_addr(n4))
            .await
            .expect("promote 4");
        admin
            .add_voter(5, &c.peer_addr(n5))
            .await
            .expect("promote 5");
        let s = admin.cluster_status().await.expect("status");
        assert_eq!(s.members.iter().filter(|m| m.voter).count(), 5, "{s:?}");
        // Shrink 5 -> 3 (remove two of the original voters).
        admin.remove_member(1).await.expect("remove 1");
        admin.remove_member(2).await.expect("remove 2");
        // A removed server stops serving; the admin client moves to a member and sees
        // the new configuration.
        let check = client_only(&c, n4).await;
        eventually(20, "voters are 3, 4, 5", || async {
            check
                .cluster_status()
                .await
                .map(|s| {
                    s.members
                        .iter()
                        .filter(|m| m.voter)
                        .map(|m| m.id)
                        .collect::<Vec<_>>()
                        == vec![3, 4, 5]
                })
                .unwrap_or(false)
        })
        .await;
        eventually(20, "removed servers stop serving", || async {
            !c.handle(0).expect("running").pipeline().shared.is_serving()
                && !c.handle(1).expect("running").pipeline().shared.is_serving()
        })
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let ok = load.await.expect("load");
        assert!(ok > 0, "writes kept succeeding during the changes ({ok})");
        // The remaining ensemble still commits.
        let fresh = client_only(&c, n5).await;
        fresh
            .create("/after", "", &CreateOptions::persistent())
            .await
            .expect("write after shrink");
        let bad = check.remove_member(42).await.expect_err("not a member");
        assert_eq!(bad.code(), zk_client::Code::BadArguments);
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_commit_and_converges_after_healing() {
    bounded(90, async {
        let mut c = cluster(3, 0).await;
        let leader = c.leader().expect("leader");
        let lone = (leader + 1) % 3;
        let cl = client_only(&c, lone).await;
        cl.create("/before", "", &CreateOptions::persistent())
            .await
            .expect("create");
        // Take away the majority: the lone server has no quorum.
        let others: Vec<usize> = (0..3).filter(|i| *i != lone).collect();
        for &i in &others {
            c.stop(i).await;
        }
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            cl.create("/minority", "", &CreateOptions::persistent()),
        )
        .await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "a minority must not commit: {attempt:?}"
        );
        // It stops serving its clients (they see Disconnected), then heals.
        eventually(10, "the lone server stops serving", || async {
            !c.handle(lone)
                .expect("running")
                .pipeline()
                .shared
                .is_serving()
        })
        .await;
        for &i in &others {
            c.restart(i).await.expect("restart");
        }
        c.wait_for_leader(Duration::from_secs(20))
            .await
            .expect("leader");
        let after = client_only(&c, lone).await;
        after
            .create("/healed", "", &CreateOptions::persistent())
            .await
            .expect("write after healing");
        after.sync("/").await.expect("sync");
        assert!(after.exists("/before").await.expect("exists").is_some());
        assert!(
            after.exists("/minority").await.expect("exists").is_none(),
            "the refused write never appears"
        );
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_never_sees_an_older_zxid_across_reconnects() {
    bounded(90, async {
        let mut c = cluster(3, 0).await;
        let cl = client_at(&c, 0).await;
        let mut last = 0;
        for round in 0..3 {
            for i in 0..10 {
                cl.create(&format!("/z{round}-{i}"), "", &CreateOptions::persistent())
                    .await
                    .expect("create");
                let z = cl.last_zxid();
                assert!(z >= last, "zxid went back from {last:#x} to {z:#x}");
                last = z;
            }
            // Cut the server this client is on (whichever it is): it moves on.
            let target = round % 3;
            c.stop(target).await;
            c.wait_for_leader(Duration::from_secs(20))
                .await
                .expect("leader");
            eventually(20, "client reconnected", || async {
                cl.exists("/").await.is_ok()
            })
            .await;
            let z = cl.last_zxid();
            assert!(z >= last, "after reconnect: {z:#x} < {last:#x}");
            last = z;
            c.restart(target).await.expect("restart");
        }
        c.shutdown().await;
    })
    .await;
}
