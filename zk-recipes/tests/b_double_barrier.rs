//! Double barrier against a real server: with 5 participants nobody leaves `enter`
//! before the fifth arrives, and nobody leaves `leave` before all have left.

mod b_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use b_common::{bounded, client, server};
use zk_recipes::{DoubleBarrier, Error};

#[tokio::test]
async fn nobody_passes_enter_before_the_fifth_or_leave_before_the_last() {
    bounded(60, async {
        let s = server().await;
        let arrived = Arc::new(AtomicUsize::new(0));
        let leaving = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..5u64 {
            let b = DoubleBarrier::new(client(&s).await, "/barriers/dbl", 5);
            let (arrived, leaving) = (arrived.clone(), leaving.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(150 * i)).await;
                arrived.fetch_add(1, Ordering::SeqCst);
                b.enter().await.expect("enter");
                assert_eq!(arrived.load(Ordering::SeqCst), 5, "entered early");
                tokio::time::sleep(Duration::from_millis(100 * (5 - i))).await;
                leaving.fetch_add(1, Ordering::SeqCst);
                b.leave().await.expect("leave");
                assert_eq!(leaving.load(Ordering::SeqCst), 5, "left early");
            }));
        }
        for t in tasks {
            t.await.expect("participant");
        }
    })
    .await;
}

#[tokio::test]
async fn enter_times_out_without_enough_participants_and_does_not_count() {
    bounded(30, async {
        let s = server().await;
        let a = DoubleBarrier::new(client(&s).await, "/dbl2", 2).with_id("a");
        let e = a
            .enter_timeout(Duration::from_millis(300))
            .await
            .expect_err("alone");
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
        // The timed-out participant was removed: two fresh ones are needed.
        let b = DoubleBarrier::new(client(&s).await, "/dbl2", 2).with_id("b");
        let e = b
            .enter_timeout(Duration::from_millis(300))
            .await
            .expect_err("a does not count any more");
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
        let (ra, rb) = tokio::join!(a.enter(), b.enter());
        ra.expect("a enters");
        rb.expect("b enters");
        let (la, lb) = tokio::join!(a.leave(), b.leave());
        la.expect("a leaves");
        lb.expect("b leaves");
    })
    .await;
}
