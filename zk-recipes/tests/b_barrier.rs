//! Barrier against a real server: waiters are held while it is set and all released
//! when it is removed; an unset barrier does not block.

mod b_common;

use std::time::Duration;

use b_common::{bounded, client, server};
use zk_recipes::{Barrier, Error};

#[tokio::test]
async fn waiters_are_released_on_remove() {
    bounded(30, async {
        let s = server().await;
        let owner = Barrier::new(client(&s).await, "/barriers/b1");
        assert!(!owner.is_set().await.expect("is_set"));
        owner.wait().await.expect("an unset barrier does not block");
        owner.set().await.expect("set");
        owner.set().await.expect("set twice is fine");
        assert!(owner.is_set().await.expect("is_set"));

        let mut waiters = Vec::new();
        for _ in 0..3 {
            let b = Barrier::new(client(&s).await, "/barriers/b1");
            waiters.push(tokio::spawn(async move { b.wait().await }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            waiters.iter().all(|w| !w.is_finished()),
            "held while the barrier is set"
        );
        let e = Barrier::new(client(&s).await, "/barriers/b1")
            .wait_timeout(Duration::from_millis(100))
            .await
            .expect_err("still set");
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");

        owner.remove().await.expect("remove");
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("released in time")
                .expect("task")
                .expect("wait ok");
        }
        owner.remove().await.expect("removing twice is fine");
    })
    .await;
}
