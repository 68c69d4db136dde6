//! Shared counter against a real server: concurrent adds from several clients all count.

mod b_common;

use b_common::{bounded, client, server};
use zk_recipes::SharedCounter;

#[tokio::test]
async fn concurrent_adds_from_several_clients_end_exact() {
    bounded(60, async {
        let s = server().await;
        let first = SharedCounter::new(client(&s).await, "/counters/c");
        assert_eq!(first.get().await.expect("get"), 0, "missing counts as 0");
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let c = SharedCounter::new(client(&s).await, "/counters/c");
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    c.add(1).await.expect("add");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(first.get().await.expect("get"), 200);
        assert_eq!(first.add(-50).await.expect("add"), 150);
        assert!(!first.compare_and_set(1, 2).await.expect("cas"));
        assert!(first.compare_and_set(150, 7).await.expect("cas"));
        assert_eq!(first.get().await.expect("get"), 7);
    })
    .await;
}
