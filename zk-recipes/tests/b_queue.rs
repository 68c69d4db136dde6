//! FIFO queue against a real server: 3 producers x 200 items and 3 consumers; every
//! item is taken exactly once and each producer's items come out in order.

mod b_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use b_common::{bounded, client, server};
use tokio::sync::Mutex;
use zk_recipes::Queue;

const PRODUCERS: usize = 3;
const ITEMS: usize = 200;
const CONSUMERS: usize = 3;

#[tokio::test]
async fn every_item_is_taken_once_in_producer_order() {
    bounded(120, async {
        let s = server().await;
        let total = PRODUCERS * ITEMS;
        let taken = Arc::new(Mutex::new(0usize));
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let done_tx = Arc::new(done_tx);

        let mut consumers = Vec::new();
        for _ in 0..CONSUMERS {
            let q = Queue::new(client(&s).await, "/queues/q1");
            let taken = taken.clone();
            let done_tx = done_tx.clone();
            let mut done_rx = done_rx.clone();
            consumers.push(tokio::spawn(async move {
                let mut got: Vec<String> = Vec::new();
                loop {
                    let item = tokio::select! {
                        _ = done_rx.wait_for(|d| *d) => break,
                        item = q.take() => item.expect("take"),
                    };
                    got.push(String::from_utf8(item.to_vec()).expect("utf8"));
                    let mut n = taken.lock().await;
                    *n += 1;
                    if *n == total {
                        done_tx.send_replace(true);
                    }
                }
                got
            }));
        }
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let q = Queue::new(client(&s).await, "/queues/q1");
            producers.push(tokio::spawn(async move {
                for i in 0..ITEMS {
                    q.offer(format!("{p}:{i:04}")).await.expect("offer");
                }
            }));
        }
        for p in producers {
            p.await.expect("producer");
        }
        let mut all = HashSet::new();
        for c in consumers {
            let got = c.await.expect("consumer");
            // Within one consumer, each producer's items are in increasing order.
            for p in 0..PRODUCERS {
                let mine: Vec<&String> = got
                    .iter()
                    .filter(|s| s.starts_with(&format!("{p}:")))
                    .collect();
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "order of {p}: {mine:?}"
                );
            }
            for item in got {
                assert!(all.insert(item.clone()), "{item} taken twice");
            }
        }
        assert_eq!(all.len(), total, "every item taken");

        let q = Queue::new(client(&s).await, "/queues/q1");
        assert!(q.is_empty().await.expect("empty"));
        assert_eq!(q.try_take().await.expect("try_take"), None);
    })
    .await;
}

#[tokio::test]
async fn peek_try_take_and_a_blocked_take() {
    bounded(30, async {
        let s = server().await;
        let q = Queue::new(client(&s).await, "/q2");
        assert_eq!(q.peek().await.expect("peek"), None);
        let waiting = {
            let q = Queue::new(client(&s).await, "/q2");
            tokio::spawn(async move { q.take().await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "take blocks on an empty queue");
        q.offer("a").await.expect("offer");
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the offer")
            .expect("task")
            .expect("take");
        assert_eq!(&got[..], b"a");
        q.offer("b").await.expect("offer");
        q.offer("c").await.expect("offer");
        assert_eq!(q.len().await.expect("len"), 2);
        assert_eq!(q.peek().await.expect("peek").as_deref(), Some(&b"b"[..]));
        assert_eq!(
            q.try_take().await.expect("take").as_deref(),
            Some(&b"b"[..])
        );
        assert_eq!(
            q.take_timeout(Duration::from_secs(1))
                .await
                .expect("take")
                .as_ref(),
            b"c"
        );
        assert_eq!(q.try_take().await.expect("take"), None);
    })
    .await;
}
