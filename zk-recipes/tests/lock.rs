//! The fair lock against a real server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, client, server};
use zk_recipes::{Error, Lock, LockOptions};

const CLIENTS: usize = 20;
const ROUNDS: usize = 25;

/// 20 clients x 25 acquisitions: never two holders, a counter znode protected by the
/// lock ends exact, tokens strictly increase in acquisition order, and acquisition order
/// is request order (sequence numbers increase in acquisition order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_mutual_exclusion_fifo_and_tokens() {
    let server = server().await;
    bounded(120, async {
        let setup = client(&server).await;
        setup
            .create("/counter", "0", &zk_client::CreateOptions::persistent())
            .await
            .expect("counter");
        let holders = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let c = client(&server).await;
            let (holders, order) = (holders.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let lock = Lock::new(&c, "/locks/counter").expect("lock");
                for _ in 0..ROUNDS {
                    let guard = lock.acquire().await.expect("acquire");
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    order
                        .lock()
                        .expect("order")
                        .push((guard.sequence(), guard.fencing_token()));
                    let (data, _) = c.get_data("/counter").await.expect("read");
                    let n: u64 = std::str::from_utf8(&data)
                        .expect("utf8")
                        .parse()
                        .expect("n");
                    c.set_data("/counter", (n + 1).to_string(), None)
                        .await
                        .expect("write");
                    holders.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.expect("release");
                }
                c.close().await.expect("close");
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let (data, _) = setup.get_data("/counter").await.expect("read");
        assert_eq!(&data[..], (CLIENTS * ROUNDS).to_string().as_bytes());
        let order = order.lock().expect("order").clone();
        assert_eq!(order.len(), CLIENTS * ROUNDS);
        for pair in order.windows(2) {
            assert!(pair[0].0 < pair[1].0, "FIFO: {pair:?}");
            assert!(pair[0].1 < pair[1].1, "tokens increase: {pair:?}");
        }
        // Nothing left behind.
        let left = setup
            .get_children("/locks/counter")
            .await
            .map(|(c, _)| c)
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    })
    .await;
}

/// A timed-out acquire, and a dropped acquire future, leave no node; try_acquire
/// leaves none when the lock is busy.
#[tokio::test]
async fn t20_cancellation_leaves_no_node() {
    let server = server().await;
    bounded(30, async {
        let a = client(&server).await;
        let b = client(&server).await;
        let lock_a = Lock::new(&a, "/locks/c").expect("lock");
        let lock_b = Lock::new(&b, "/locks/c").expect("lock");
        let held = lock_a.acquire().await.expect("acquire");

        let e = lock_b
            .acquire_timeout(Duration::from_millis(300))
            .await
            .expect_err("busy");
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        let (children, _) = a.get_children("/locks/c").await.expect("list");
        assert_eq!(children.len(), 1, "timed-out acquire left {children:?}");

        assert!(lock_b.try_acquire().await.expect("try").is_none());
        let (children, _) = a.get_children("/locks/c").await.expect("list");
        assert_eq!(children.len(), 1, "try_acquire left {children:?}");

        // A dropped acquire (e.g. lost a select!) is cleaned up in the background.
        let dropped = tokio::time::timeout(Duration::from_millis(200), lock_b.acquire()).await;
        assert!(dropped.is_err());
        let mut left = 2;
        for _ in 0..50 {
            left = a.get_children("/locks/c").await.expect("list").0.len();
            if left == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(left, 1, "dropped acquire left its node");

        // The waiter gets the lock when the holder releases.
        let waiting = tokio::spawn({
            let lock_b = lock_b.clone();
            async move { lock_b.acquire().await.map(|g| g.fencing_token()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let first = held.fencing_token();
        held.release().await.expect("release");
        let second = waiting.await.expect("task").expect("acquired");
        assert!(second > first);
    })
    .await;
}

/// A guard's guarded write lands while held and is fenced once released elsewhere
/// (node deleted) — and `lost()` fires.
#[tokio::test]
async fn t30_guarded_and_lost_on_delete() {
    let server = server().await;
    bounded(30, async {
        let a = client(&server).await;
        a.create("/data", "", &zk_client::CreateOptions::persistent())
            .await
            .expect("data");
        let lock = Lock::new(&a, "/locks/g").expect("lock");
        let guard = lock.acquire().await.expect("acquire");
        guard
            .guarded(vec![zk_client::Op::set_data("/data", "one", None)])
            .await
            .expect("guarded write while held");
        // An operator deletes the holder's node: the guard is lost and fenced.
        a.delete(guard.path(), None).await.expect("delete");
        guard.lost().await;
        assert!(guard.is_lost());
        let e = guard
            .guarded(vec![zk_client::Op::set_data("/data", "two", None)])
            .await
            .expect_err("fenced");
        assert!(matches!(e, Error::Fenced { .. }), "{e}");
        assert_eq!(&a.get_data("/data").await.expect("read").0[..], b"one");
    })
    .await;
}

/// Lock-delay: after a holder's session expires, the next holder waits the delay; after
/// a clean release it does not.
#[tokio::test]
async fn t40_lock_delay_after_expiry_only() {
    let server = server().await;
    bounded(30, async {
        let delay = Duration::from_millis(1500);
        let options = LockOptions {
            lock_delay: Some(delay),
            ..LockOptions::default()
        };
        let relay = common::Relay::start(&server.connect_string()).await;
        let doomed = common::client_at(relay.addr(), Duration::from_millis(600)).await;
        let b = client(&server).await;
        let lock_a = Lock::with_options(&doomed, "/locks/d", options.clone()).expect("lock");
        let lock_b = Lock::with_options(&b, "/locks/d", options).expect("lock");

        // Clean hand-over: no delay.
        let g = lock_b.acquire().await.expect("acquire");
        g.release().await.expect("release");
        let started = tokio::time::Instant::now();
        let g = lock_b.acquire().await.expect("acquire again");
        assert!(started.elapsed() < delay, "no delay after a clean release");
        g.release().await.expect("release");

        // The holder vanishes (its session expires): the next holder waits.
        let _held = lock_a.acquire().await.expect("doomed acquires");
        let waiter = tokio::spawn(async move {
            let g = lock_b.acquire().await.expect("acquire after expiry");
            (tokio::time::Instant::now(), g)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        relay.kill();
        let killed = tokio::time::Instant::now();
        let (granted, _g) = waiter.await.expect("task");
        // Expiry (about 0.6 s) plus the delay.
        assert!(
            granted - killed >= delay,
            "granted {:?} after the kill",
            granted - killed
        );
    })
    .await;
}
