//! The lock, election and queue recipes against a 3-node ensemble
//! (`zk_server::testing::TestCluster`), with the ensemble's leader stopped in the middle
//! of each run: the recipes must ride out the failover (connection losses, reconnects to
//! another server, sessions moving) and still be correct.
//!
//! Clients list every server (rotated so they spread over the nodes) and use session
//! timeouts well above a failover (the test cluster elects within 300-600 ms; its ticks
//! are raised to 250 ms so that the servers grant 5 s sessions).

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, Relay};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use zk_client::{Client, CreateOptions, Op, SessionState};
use zk_recipes::{Election, Error, Lock, Queue};
use zk_server::testing::TestCluster;

/// Session timeout of the clients that must survive the failover.
const SESSION: Duration = Duration::from_secs(5);

async fn cluster() -> TestCluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,openraft=error")),
        )
        .with_test_writer()
        .try_init();
    // 250 ms ticks: the servers grant sessions up to 20 ticks (5 s).
    TestCluster::start_with(3, 0, |config| config.tick_ms = 250)
        .await
        .expect("start a 3-node cluster")
}

/// `addrs` rotated to start at `first`, comma-separated.
fn rotated(addrs: &[String], first: usize) -> String {
    let n = addrs.len();
    (0..n)
        .map(|k| addrs[(first + k) % n].clone())
        .collect::<Vec<_>>()
        .join(",")
}

fn addrs(c: &TestCluster) -> Vec<String> {
    (0..c.len()).map(|i| c.client_addr(i)).collect()
}

/// A client of every server, starting at `first`, with `timeout` sessions.
async fn client_of(servers: &str, timeout: Duration) -> Client {
    Client::builder()
        .servers(servers)
        .session_timeout(timeout)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .expect("client connects")
}

async fn client_at(c: &TestCluster, first: usize) -> Client {
    client_of(&rotated(&addrs(c), first), SESSION).await
}

/// Waits until the client is connected (after a connection loss).
async fn connected(client: &Client) {
    let mut states = client.state();
    while let Some(state) = states.next().await {
        match state {
            SessionState::Connected => return,
            SessionState::Disconnected => {}
            other => panic!("session ended: {other:?}"),
        }
    }
    panic!("state stream ended");
}

/// Runs an idempotent client call until it does not fail with a retryable error.
async fn retried<T, F, Fut>(client: &Client, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zk_client::Result<T>>,
{
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                connected(client).await;
            }
            Err(e) => panic!("client call failed: {e}"),
        }
    }
}

/// Stops the ensemble's leader once `trigger` says so; returns the stopped index after a
/// new leader serves.
async fn kill_leader_when(c: &mut TestCluster, trigger: &mut watch::Receiver<bool>) -> usize {
    trigger.wait_for(|go| *go).await.expect("trigger");
    let leader = c.leader().expect("a leader");
    c.stop(leader).await;
    let next = c
        .wait_for_leader(Duration::from_secs(10))
        .await
        .expect("a new leader");
    assert_ne!(next, leader);
    leader
}

const LOCK_CLIENTS: usize = 5;
const LOCK_ROUNDS: usize = 10;

/// 5 clients x 10 acquisitions, the ensemble leader stopped after a third of them: a
/// counter protected by the lock (written with a guarded, versioned `set_data`) ends
/// exact, there are never two holders, and fencing tokens and sequence numbers strictly
/// increase in acquisition order. Nothing is left in the lock directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_lock_across_leader_failover() {
    let mut c = cluster().await;
    bounded(60, async {
        let setup = client_at(&c, 0).await;
        setup
            .create("/counter", "0", &CreateOptions::persistent())
            .await
            .expect("counter");
        let holders = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (go, mut trigger) = watch::channel(false);
        let go = Arc::new(go);
        let mut tasks = Vec::new();
        for i in 0..LOCK_CLIENTS {
            let client = client_at(&c, i).await;
            let (holders, order, go) = (holders.clone(), order.clone(), go.clone());
            tasks.push(tokio::spawn(async move {
                let lock = Lock::new(&client, "/locks/counter").expect("lock");
                for _ in 0..LOCK_ROUNDS {
                    let guard = lock.acquire().await.expect("acquire");
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    let done = {
                        let mut order = order.lock().expect("order");
                        order.push((guard.sequence(), guard.fencing_token()));
                        order.len()
                    };
                    if done == LOCK_CLIENTS * LOCK_ROUNDS / 3 {
                        go.send_replace(true);
                    }
                    increment(&client, &guard).await;
                    assert!(!guard.is_lost(), "the lock was lost across the failover");
                    holders.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.expect("release");
                }
                client.close().await.expect("close");
            }));
        }
        let stopped = kill_leader_when(&mut c, &mut trigger).await;
        for t in tasks {
            t.await.expect("lock client");
        }
        let (data, _) = retried(&setup, || setup.get_data("/counter")).await;
        assert_eq!(
            &data[..],
            (LOCK_CLIENTS * LOCK_ROUNDS).to_string().as_bytes()
        );
        let order = order.lock().expect("order").clone();
        assert_eq!(order.len(), LOCK_CLIENTS * LOCK_ROUNDS);
        for pair in order.windows(2) {
            assert!(pair[0].0 < pair[1].0, "FIFO: {pair:?}");
            assert!(pair[0].1 < pair[1].1, "tokens increase: {pair:?}");
        }
        retried(&setup, || setup.sync("/locks/counter")).await;
        let left = match setup.get_children("/locks/counter").await {
            Ok((children, _)) => children,
            Err(zk_client::Error::NoNode { .. }) => Vec::new(),
            Err(e) => panic!("list: {e}"),
        };
        assert!(left.is_empty(), "left behind: {left:?}");
        tracing::info!(stopped, "lock test done");
    })
    .await;
}

/// Adds one to `/counter` while holding `guard`: a guarded, versioned write. A write
/// whose reply was lost is re-read (after `sync`) to learn whether it landed; as the only
/// holder, nobody else may have moved the counter meanwhile.
async fn increment(client: &Client, guard: &zk_recipes::LockGuard) {
    let (data, stat) = retried(client, || client.get_data("/counter")).await;
    let n: u64 = std::str::from_utf8(&data)
        .expect("utf8")
        .parse()
        .expect("number");
    let mut version = stat.version;
    loop {
        let write = guard
            .guarded(vec![Op::set_data(
                "/counter",
                (n + 1).to_string(),
                Some(version),
            )])
            .await;
        match write {
            Ok(_) => return,
            Err(Error::Client(e)) if e.is_retryable() => {
                connected(client).await;
                retried(client, || client.sync("/counter")).await;
                let (data, stat) = retried(client, || client.get_data("/counter")).await;
                let now: u64 = std::str::from_utf8(&data)
                    .expect("utf8")
                    .parse()
                    .expect("number");
                if now == n + 1 && stat.version == version + 1 {
                    return;
                }
                assert_eq!(now, n, "the counter moved while we held the lock");
                version = stat.version;
            }
            Err(e) => panic!("guarded increment: {e}"),
        }
    }
}

const CANDIDATES: usize = 4;

/// 4 candidates (each reaching the servers through relays, so one can be cut off): one
/// leader at a time. The ensemble leader is stopped while the first candidate leads: it
/// keeps its leadership (session survives) and its guarded writes still land. Then the
/// leading candidate is cut off: `lost()` fires on it before another is elected, the new
/// token is higher, and the deposed leader's guarded write fails with `Fenced`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_election_across_leader_failover() {
    let mut c = cluster().await;
    bounded(60, async {
        let admin = client_at(&c, 0).await;
        admin
            .create("/state", "", &CreateOptions::persistent())
            .await
            .expect("state");
        let targets = addrs(&c);
        let mut relays = Vec::new();
        let mut elections = Vec::new();
        for i in 0..CANDIDATES {
            let mut mine = Vec::new();
            for t in &targets {
                mine.push(Relay::start(t).await);
            }
            let via: Vec<String> = mine.iter().map(|r| r.addr().to_string()).collect();
            let client = client_of(&rotated(&via, i), Duration::from_secs(4)).await;
            elections.push(
                Election::new(&client, "/election/ens", format!("cand-{i}")).expect("election"),
            );
            relays.push(mine);
        }
        let leaders = Arc::new(AtomicUsize::new(0));
        let (tx, mut elected) = tokio::sync::mpsc::unbounded_channel();
        for (i, election) in elections.iter().enumerate() {
            let (election, leaders, tx) = (election.clone(), leaders.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(leadership) = election.campaign().await {
                    let now = Instant::now();
                    assert_eq!(leaders.fetch_add(1, Ordering::SeqCst), 0, "two leaders");
                    let _ = tx.send((i, now, leadership));
                }
            });
        }
        let (first, _, leadership) = elected.recv().await.expect("a leader");
        leadership
            .guarded(vec![Op::set_data("/state", "before", None)])
            .await
            .expect("leader writes");

        // The ensemble loses its leader; the candidate's session moves and survives.
        let (go, mut trigger) = watch::channel(true);
        let stopped = kill_leader_when(&mut c, &mut trigger).await;
        drop(go);
        let mut wrote = false;
        for _ in 0..100 {
            match leadership
                .guarded(vec![Op::set_data("/state", "after failover", None)])
                .await
            {
                Ok(_) => {
                    wrote = true;
                    break;
                }
                Err(Error::Client(e)) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("leader's write after the failover: {e}"),
            }
        }
        assert!(wrote, "the leader could not write after the failover");
        assert!(!leadership.is_lost(), "leadership lost across a failover");
        assert!(
            elected.try_recv().is_err(),
            "a second leader during the failover"
        );
        let observed = elections[(first + 1) % CANDIDATES]
            .leader()
            .await
            .expect("leader")
            .expect("some");
        assert_eq!(observed.id, format!("cand-{first}"));

        // Cut the leading candidate off: it learns first, then someone else leads.
        let lost = leadership.lost();
        let lost_at = tokio::spawn(async move {
            lost.await;
            Instant::now()
        });
        let cut = Instant::now();
        leaders.fetch_sub(1, Ordering::SeqCst);
        for r in &relays[first] {
            r.kill();
        }
        let (second, elected_at, next) = elected.recv().await.expect("a new leader");
        assert_ne!(second, first);
        let lost_at = lost_at.await.expect("lost");
        assert!(
            lost_at < elected_at,
            "lost() fired after the new leader was elected"
        );
        assert!(
            elected_at - cut < Duration::from_secs(15),
            "new leader after {:?}",
            elected_at - cut
        );
        assert!(next.fencing_token() > leadership.fencing_token());
        let e = leadership
            .guarded(vec![Op::set_data("/state", "by the deposed", None)])
            .await
            .expect_err("deposed leader is fenced");
        assert!(matches!(e, Error::Fenced { .. }), "{e}");
        next.guarded(vec![Op::set_data("/state", "by second", None)])
            .await
            .expect("new leader writes");
        retried(&admin, || admin.sync("/state")).await;
        assert_eq!(
            &retried(&admin, || admin.get_data("/state")).await.0[..],
            b"by second"
        );
        tracing::info!(stopped, "election test done");
    })
    .await;
}

const PRODUCERS: usize = 3;
const ITEMS: usize = 60;
const CONSUMERS: usize = 3;

/// 3 producers x 60 items, 3 consumers, the ensemble leader stopped after a third of the
/// items were taken: every item is taken exactly once, and each producer's items come out
/// in order at every consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_queue_across_leader_failover() {
    let mut c = cluster().await;
    bounded(60, async {
        let total = PRODUCERS * ITEMS;
        let taken = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = watch::channel(false);
        let done_tx = Arc::new(done_tx);
        let (go, mut trigger) = watch::channel(false);
        let go = Arc::new(go);

        let mut consumers = Vec::new();
        for i in 0..CONSUMERS {
            let q = Queue::new(client_at(&c, i).await, "/queues/ens");
            let (taken, done_tx, go) = (taken.clone(), done_tx.clone(), go.clone());
            let mut done_rx = done_rx.clone();
            consumers.push(tokio::spawn(async move {
                let mut got: Vec<String> = Vec::new();
                loop {
                    let item = tokio::select! {
                        _ = done_rx.wait_for(|d| *d) => break,
                        item = q.take() => item.expect("take"),
                    };
                    got.push(String::from_utf8(item.to_vec()).expect("utf8"));
                    let n = taken.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == total / 3 {
                        go.send_replace(true);
                    }
                    if n >= total {
                        done_tx.send_replace(true);
                    }
                }
                got
            }));
        }
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let q = Queue::new(client_at(&c, p + 1).await, "/queues/ens");
            producers.push(tokio::spawn(async move {
                for i in 0..ITEMS {
                    q.offer(format!("{p}:{i:04}")).await.expect("offer");
                    // Spread the offers over the run, so the failover hits it mid-way.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        let stopped = kill_leader_when(&mut c, &mut trigger).await;
        for p in producers {
            p.await.expect("producer");
        }
        let mut all = HashSet::new();
        for consumer in consumers {
            let got = consumer.await.expect("consumer");
            for p in 0..PRODUCERS {
                let mine: Vec<&String> = got
                    .iter()
                    .filter(|s| s.starts_with(&format!("{p}:")))
                    .collect();
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "order of producer {p}: {mine:?}"
                );
            }
            for item in got {
                assert!(all.insert(item.clone()), "{item} taken twice");
            }
        }
        assert_eq!(all.len(), total, "every item taken");
        let admin = client_at(&c, 0).await;
        let check = Queue::new(admin.clone(), "/queues/ens");
        assert_eq!(check.try_take().await.expect("try_take"), None);
        // Receipts and claim markers are removed in the background: nothing stays.
        let mut left = Vec::new();
        for _ in 0..100 {
            retried(&admin, || admin.sync("/queues/ens")).await;
            left = retried(&admin, || admin.get_children("/queues/ens"))
                .await
                .0;
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(left.is_empty(), "left in the queue: {left:?}");
        tracing::info!(stopped, "queue test done");
    })
    .await;
}
