//! Leader election against a real server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, client, client_at, server, Relay};
use futures::StreamExt;
use tokio::time::Instant;
use zk_client::{CreateOptions, Op};
use zk_recipes::{Election, Error, LeaderLatch, LeaderSelector};

/// 5 candidates: exactly one leader at a time; the leader's session expires (its client
/// is cut off) -> `lost()` fires on it before a new leader is elected, the new leader
/// comes within the session timeout (plus slack), and the old leader's guarded write
/// fails with `Fenced`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_one_leader_expiry_fencing() {
    let server = server().await;
    bounded(60, async {
        let timeout = Duration::from_millis(1000);
        let admin = client(&server).await;
        admin
            .create("/state", "", &CreateOptions::persistent())
            .await
            .expect("state");
        let mut relays = Vec::new();
        let mut elections = Vec::new();
        for i in 0..5 {
            let relay = Relay::start(&server.connect_string()).await;
            let c = client_at(relay.addr(), timeout).await;
            elections
                .push(Election::new(&c, "/election/e", format!("cand-{i}")).expect("election"));
            relays.push(relay);
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
            .guarded(vec![Op::set_data("/state", "by first", None)])
            .await
            .expect("leader writes");
        let observed = elections[1].leader().await.expect("leader").expect("some");
        assert_eq!(observed.id, format!("cand-{first}"));
        assert_eq!(observed.token, leadership.fencing_token());

        // Cut the leader off: it must learn first, then someone else leads.
        let lost = leadership.lost();
        let lost_at = tokio::spawn(async move {
            lost.await;
            Instant::now()
        });
        let cut = Instant::now();
        leaders.fetch_sub(1, Ordering::SeqCst);
        relays[first].kill();
        let (second, elected_at, next) = elected.recv().await.expect("a new leader");
        assert_ne!(second, first);
        let lost_at = lost_at.await.expect("lost");
        assert!(
            lost_at < elected_at,
            "lost() fired after the new leader was elected"
        );
        assert!(
            elected_at - cut < timeout * 3,
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
        assert_eq!(
            &admin.get_data("/state").await.expect("read").0[..],
            b"by second"
        );

        // Resigning hands over to the next candidate.
        let token = next.fencing_token();
        leaders.fetch_sub(1, Ordering::SeqCst);
        next.resign().await.expect("resign");
        let (third, _, leadership3) = elected.recv().await.expect("a third leader");
        assert!(third != first && third != second);
        assert!(leadership3.fencing_token() > token);
    })
    .await;
}

/// `observe` streams the leader as it changes.
#[tokio::test]
async fn t20_observe() {
    let server = server().await;
    bounded(30, async {
        let a = client(&server).await;
        let b = client(&server).await;
        let watcher = Election::new(&a, "/election/o", "watcher").expect("election");
        let mut stream = Box::pin(watcher.observe());
        assert_eq!(stream.next().await.expect("item").expect("ok"), None);
        let one = Election::new(&b, "/election/o", "one").expect("election");
        let l1 = one.campaign().await.expect("leader");
        let seen = stream
            .next()
            .await
            .expect("item")
            .expect("ok")
            .expect("leader");
        assert_eq!(seen.id, "one");
        assert_eq!(seen.token, l1.fencing_token());
        let two = Election::new(&a, "/election/o", "two").expect("election");
        let waiting = tokio::spawn(async move { two.campaign().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        l1.resign().await.expect("resign");
        let seen = stream
            .next()
            .await
            .expect("item")
            .expect("ok")
            .expect("leader");
        assert_eq!(seen.id, "two");
        let l2 = waiting.await.expect("task").expect("leader");
        l2.resign().await.expect("resign");
        assert_eq!(stream.next().await.expect("item").expect("ok"), None);
    })
    .await;
}

/// A latch reports leadership; a selector makes candidates take turns.
#[tokio::test]
async fn t30_latch_and_selector() {
    let server = server().await;
    bounded(30, async {
        let a = client(&server).await;
        let b = client(&server).await;
        let la = LeaderLatch::start(Election::new(&a, "/election/l", "a").expect("e"));
        la.await_leadership().await.expect("a leads");
        let lb = LeaderLatch::start(Election::new(&b, "/election/l", "b").expect("e"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(la.has_leadership());
        assert!(!lb.has_leadership());
        la.close().await;
        let token = lb.await_leadership().await.expect("b leads");
        assert_eq!(lb.fencing_token(), Some(token));
        lb.close().await;

        // Selector: three candidates, each turn short; turns alternate.
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut selectors = Vec::new();
        for name in ["x", "y", "z"] {
            let c = client(&server).await;
            let log = log.clone();
            let election = Election::new(&c, "/election/s", name).expect("e");
            selectors.push(LeaderSelector::start(election, move |leadership| {
                let log = log.clone();
                async move {
                    log.lock()
                        .expect("log")
                        .push((leadership.id().to_string(), leadership.fencing_token()));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        loop {
            if log.lock().expect("log").len() >= 9 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for s in selectors {
            s.stop().await;
        }
        let log = log.lock().expect("log").clone();
        for pair in log.windows(2) {
            assert_ne!(pair[0].0, pair[1].0, "turns alternate: {log:?}");
            assert!(pair[0].1 < pair[1].1);
        }
    })
    .await;
}

/// Lock-delay for elections: a leader that vanished delays the next one.
#[tokio::test]
async fn t40_election_lock_delay() {
    let server = server().await;
    bounded(30, async {
        let delay = Duration::from_millis(1200);
        let options = zk_recipes::ElectionOptions {
            lock_delay: Some(delay),
            ..Default::default()
        };
        let relay = Relay::start(&server.connect_string()).await;
        let doomed = client_at(relay.addr(), Duration::from_millis(600)).await;
        let b = client(&server).await;
        let first = Election::with_options(&doomed, "/election/d", "a", options.clone())
            .expect("e")
            .campaign()
            .await
            .expect("leads");
        let next = Election::with_options(&b, "/election/d", "b", options).expect("e");
        let waiting = tokio::spawn(async move { (next.campaign().await, Instant::now()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        relay.kill();
        let killed = Instant::now();
        first.lost().await;
        let (won, at) = waiting.await.expect("task");
        won.expect("b leads");
        assert!(
            at - killed >= delay,
            "elected {:?} after the kill",
            at - killed
        );
    })
    .await;
}
