//! Read-write lock and semaphore against a real server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, client, server};
use zk_recipes::{Error, RwLock, Semaphore};

/// Readers share; a writer excludes everyone; a waiting writer holds back later readers.
#[tokio::test]
async fn t10_rwlock() {
    let server = server().await;
    bounded(30, async {
        let a = client(&server).await;
        let b = client(&server).await;
        let rw_a = RwLock::new(&a, "/rw/x").expect("rw");
        let rw_b = RwLock::new(&b, "/rw/x").expect("rw");
        let r1 = rw_a.read().await.expect("read");
        let r2 = rw_b.read().await.expect("second reader shares");
        assert!(rw_b.try_write().await.expect("try").is_none());
        let writer = tokio::spawn({
            let rw_b = rw_b.clone();
            async move { rw_b.write().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A reader arriving after the waiting writer waits too.
        let e = rw_a
            .read_timeout(Duration::from_millis(200))
            .await
            .expect_err("behind the writer");
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        r1.release().await.expect("release");
        r2.release().await.expect("release");
        let w = writer.await.expect("task").expect("writer");
        assert!(rw_a.try_read().await.expect("try").is_none());
        w.release().await.expect("release");
        let r = rw_a.try_read().await.expect("try").expect("free now");
        r.release().await.expect("release");
        // Nothing left: the lock's container is empty, or already reaped by the server.
        let left = match a.get_children("/rw/x").await {
            Ok((children, _)) => children,
            Err(zk_client::Error::NoNode { .. }) => Vec::new(),
            Err(e) => panic!("list: {e}"),
        };
        assert!(left.is_empty(), "{left:?}");
    })
    .await;
}

/// At most N leases at once across 6 clients; a timed-out acquire leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_semaphore() {
    let server = server().await;
    bounded(60, async {
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let c = client(&server).await;
            let (inside, peak) = (inside.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let sem = Semaphore::new(&c, "/sem/pool", 2).expect("sem");
                for _ in 0..5 {
                    let lease = sem.acquire().await.expect("lease");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 2, "{now} holders");
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    lease.release().await.expect("release");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);

        let c = client(&server).await;
        let sem = Semaphore::new(&c, "/sem/pool", 2).expect("sem");
        let l1 = sem.acquire().await.expect("1");
        let l2 = sem.try_acquire().await.expect("try").expect("2");
        assert!(l2.fencing_token() > l1.fencing_token());
        assert!(sem.try_acquire().await.expect("try").is_none());
        let e = sem
            .acquire_timeout(Duration::from_millis(200))
            .await
            .expect_err("full");
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        let (leases, _) = c.get_children("/sem/pool/leases").await.expect("list");
        assert_eq!(leases.len(), 2, "{leases:?}");
        l1.release().await.expect("release");
        let l3 = sem.acquire().await.expect("3");
        l2.release().await.expect("release");
        l3.release().await.expect("release");
    })
    .await;
}
