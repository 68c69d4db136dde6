//! Sessions against a real server: expiry removes ephemerals and fires watches,
//! reattach (and its refusal), session state, reconnect across a server restart with
//! watch re-registration, and sessions surviving a restart.

use std::time::Duration;

use futures::StreamExt;
use tests::raw::{self, RawSession};
use tests::{bounded, client, eventually, server};
use zk_client::{Client, Code, CreateOptions, EventType, SessionState};
use zk_proto::pb;

async fn raw_session(addr: &str, timeout_ms: u32) -> RawSession {
    raw::open(
        addr,
        pb::ConnectRequest {
            session_id: 0,
            password: Default::default(),
            timeout_ms,
            last_zxid_seen: 0,
        },
    )
    .await
    .expect("raw session")
}

fn create_ephemeral(path: &str) -> pb::request::Op {
    pb::request::Op::Create(pb::CreateRequest {
        path: path.into(),
        data: Default::default(),
        mode: pb::CreateMode::Ephemeral as i32,
        ttl_ms: 0,
        acl: vec![],
    })
}

#[tokio::test]
async fn expiry_removes_ephemerals_and_fires_watches() {
    bounded(30, async {
        let s = server().await;
        let observer = client(&s).await;
        let mut gone = raw_session(&s.connect_string(), 400).await;
        assert_eq!(gone.connected.timeout_ms, 400);
        let r = gone
            .call(1, create_ephemeral("/lease"))
            .await
            .expect("create");
        assert_eq!(r.err, 0, "{}", r.message);
        let (stat, deleted) = observer.exists_and_watch("/lease").await.expect("watch");
        assert_eq!(
            stat.expect("exists").ephemeral_owner,
            gone.connected.session_id
        );
        // The client vanishes without closing its session.
        let (id, password) = (gone.connected.session_id, gone.connected.password.clone());
        drop(gone);
        let ev = tokio::time::timeout(Duration::from_secs(5), deleted)
            .await
            .expect("ephemeral removed on expiry");
        assert_eq!(ev.event_type, EventType::NodeDeleted);
        assert!(observer.exists("/lease").await.expect("exists").is_none());

        // Reattaching to the expired session is refused, never silently renewed.
        let refused = raw::open(
            &s.connect_string(),
            pb::ConnectRequest {
                session_id: id,
                password: password.clone(),
                timeout_ms: 400,
                last_zxid_seen: 0,
            },
        )
        .await
        .expect("a connect response");
        assert_eq!(refused.connected.timeout_ms, 0);
        let e = Client::builder()
            .servers(&s.connect_string())
            .session(id, password.to_vec())
            .connect()
            .await
            .expect_err("expired");
        assert_eq!(e.code(), Code::SessionExpired);
    })
    .await;
}

#[tokio::test]
async fn session_timeout_is_negotiated_within_ticks() {
    bounded(20, async {
        let s = server().await; // tick 100 ms: [200, 2000] ms
        let low = raw_session(&s.connect_string(), 1).await;
        assert_eq!(low.connected.timeout_ms, 200);
        let high = raw_session(&s.connect_string(), 600_000).await;
        assert_eq!(high.connected.timeout_ms, 2000);
        let c = Client::builder()
            .servers(&s.connect_string())
            .session_timeout(Duration::from_millis(1500))
            .connect()
            .await
            .expect("connect");
        assert_eq!(c.session_timeout(), Duration::from_millis(1500));
        assert!(c.session_lease() > tokio::time::Instant::now());
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_refused() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        let e = Client::builder()
            .servers(&s.connect_string())
            .session(c.session_id(), vec![0u8; 16])
            .connect()
            .await
            .expect_err("bad password");
        assert_eq!(e.code(), Code::SessionExpired);
        // The real session is untouched.
        c.exists("/").await.expect("still alive");
    })
    .await;
}

#[tokio::test]
async fn reconnect_reattaches_the_session_and_rearms_watches() {
    bounded(60, async {
        let mut s = server().await;
        let c = Client::builder()
            .servers(&s.connect_string())
            .session_timeout(Duration::from_secs(2))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .connect()
            .await
            .expect("connect");
        let id = c.session_id();
        let mut states = c.state();
        assert_eq!(states.next().await, Some(SessionState::Connected));
        c.create("/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("ephemeral");
        c.create("/w", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        let (_, _, data_watch) = c.get_data_and_watch("/w").await.expect("watch");
        let mut persistent = c.watch("/w", false).await.expect("persistent");

        s.restart().await.expect("restart");
        let state = tokio::time::timeout(Duration::from_secs(10), states.next())
            .await
            .expect("state");
        assert_eq!(state, Some(SessionState::Disconnected));
        let state = tokio::time::timeout(Duration::from_secs(10), states.next())
            .await
            .expect("state");
        assert_eq!(state, Some(SessionState::Connected));
        assert_eq!(c.session_id(), id, "same session after reconnect");
        assert!(
            c.exists("/eph").await.expect("exists").is_some(),
            "ephemeral survived"
        );

        let other = client(&s).await;
        other.set_data("/w", "1", None).await.expect("set");
        let ev = tokio::time::timeout(Duration::from_secs(5), data_watch)
            .await
            .expect("re-armed data watch");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        // A persistent watcher also sees the session's Disconnected/Connected notices.
        let ev = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let ev = persistent.next().await.expect("stream");
                if ev.event_type != EventType::Session {
                    return ev;
                }
            }
        })
        .await
        .expect("re-armed persistent watch");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
    })
    .await;
}

#[tokio::test]
async fn set_watches_fires_what_was_missed_since_the_last_zxid() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/changed", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        c.create("/same", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        c.create("/kids", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let seen = c
            .exists("/kids")
            .await
            .expect("exists")
            .expect("kids")
            .pzxid;
        c.set_data("/changed", "1", None).await.expect("set");
        c.create("/kids/new", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let mut r = raw_session(&s.connect_string(), 2000).await;
        r.tx.send(pb::ClientMessage {
            kind: Some(pb::client_message::Kind::Request(pb::Request {
                xid: 1,
                op: Some(pb::request::Op::SetWatches(pb::SetWatchesRequest {
                    relative_zxid: seen,
                    data_watches: vec!["/changed".into(), "/same".into(), "/deleted".into()],
                    exist_watches: vec!["/kids/new".into()],
                    child_watches: vec!["/kids".into()],
                    ..Default::default()
                })),
            })),
        })
        .await
        .expect("send");
        let mut events = Vec::new();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), r.rx.next())
                .await
                .expect("message")
                .expect("stream")
                .expect("ok");
            match m.kind {
                Some(pb::server_message::Kind::Event(e)) => events.push((e.event_type, e.path)),
                Some(pb::server_message::Kind::Response(resp)) => {
                    assert_eq!(resp.xid, 1);
                    assert_eq!(resp.err, 0);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        events.sort();
        let mut expected = vec![
            (
                pb::EventType::NodeDataChanged as i32,
                "/changed".to_string(),
            ),
            (pb::EventType::NodeDeleted as i32, "/deleted".to_string()),
            (pb::EventType::NodeCreated as i32, "/kids/new".to_string()),
            (
                pb::EventType::NodeChildrenChanged as i32,
                "/kids".to_string(),
            ),
        ];
        expected.sort();
        assert_eq!(events, expected, "the unchanged /same is re-armed silently");
        // /same was re-armed: a later change fires it.
        c.set_data("/same", "1", None).await.expect("set");
        let m = tokio::time::timeout(Duration::from_secs(5), r.rx.next())
            .await
            .expect("event")
            .expect("stream")
            .expect("ok");
        match m.kind {
            Some(pb::server_message::Kind::Event(e)) => {
                assert_eq!(
                    (e.event_type, e.path.as_str()),
                    (pb::EventType::NodeDataChanged as i32, "/same")
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn sessions_and_data_survive_a_restart() {
    bounded(60, async {
        let mut s = server().await;
        let mut raw1 = raw_session(&s.connect_string(), 2000).await;
        let r = raw1
            .call(1, create_ephemeral("/kept"))
            .await
            .expect("create");
        assert_eq!(r.err, 0);
        let (id, password) = (raw1.connected.session_id, raw1.connected.password.clone());
        drop(raw1);
        s.restart().await.expect("restart");
        // Reattach within the (restarted) timeout: the session and its ephemeral are there.
        let again = raw::open(
            &s.connect_string(),
            pb::ConnectRequest {
                session_id: id,
                password,
                timeout_ms: 2000,
                last_zxid_seen: 0,
            },
        )
        .await
        .expect("reattach");
        assert_eq!(again.connected.session_id, id);
        let c = client(&s).await;
        assert!(c.exists("/kept").await.expect("exists").is_some());
        drop(again);
        eventually(
            10,
            "the abandoned session expires after the restart",
            || async { c.exists("/kept").await.expect("exists").is_none() },
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_client_ahead_of_the_server_is_refused() {
    bounded(20, async {
        let s = server().await;
        let refused = raw::open(
            &s.connect_string(),
            pb::ConnectRequest {
                session_id: 0,
                password: Default::default(),
                timeout_ms: 1000,
                last_zxid_seen: i64::MAX,
            },
        )
        .await;
        assert!(
            refused.is_none(),
            "a server behind the client must refuse it"
        );
    })
    .await;
}

/// One task's pipelined calls in issue order: `Set(n)` writes `n`, `Get` reads.
enum Call {
    Set(u64),
    Get,
}

/// Checks one task's results, given in issue order: successful sets' versions strictly
/// increase (none overtook an earlier one), and a successful get reads a value no older
/// than the last successful set before it and no newer than the last set issued before
/// it. Every failure must be ConnectionLoss. Returns how many calls succeeded and how
/// many were lost.
fn check_in_order(
    task: usize,
    calls: &[Call],
    results: Vec<Result<Option<(u64, i32)>, zk_client::Error>>,
    last_version: &mut i32,
    last_ok_set: &mut u64,
    last_issued_set: &mut u64,
) -> (usize, usize) {
    let (mut ok, mut lost) = (0, 0);
    for (call, result) in calls.iter().zip(results) {
        if let Call::Set(n) = call {
            *last_issued_set = *n;
        }
        let result = match result {
            Ok(r) => r,
            Err(zk_client::Error::ConnectionLoss { .. }) => {
                lost += 1;
                continue;
            }
            Err(e) => panic!("task {task}: a call failed with {e:?}, not ConnectionLoss"),
        };
        ok += 1;
        match (call, result) {
            (Call::Set(n), Some((_, version))) => {
                assert!(
                    version > *last_version,
                    "task {task}: set {n} got version {version} after {last_version}: \
                     a later set overtook an earlier one"
                );
                *last_version = version;
                *last_ok_set = *n;
            }
            (Call::Get, Some((value, _))) => {
                assert!(
                    value >= *last_ok_set && value <= *last_issued_set,
                    "task {task}: get read {value}, expected {last_ok_set}..={last_issued_set}"
                );
            }
            _ => unreachable!("results are built from their calls"),
        }
    }
    (ok, lost)
}

/// Many tasks pipeline sets and gets on one Client while the server restarts three
/// times: each task's calls are answered in the order it issued them (versions increase,
/// reads see their own earlier writes and no later ones), calls made during the outage
/// fail with ConnectionLoss instead of hanging or overtaking, and every call completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_calls_from_many_tasks_keep_their_order_across_restarts() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const TASKS: usize = 8;
    const BATCH: u64 = 8;
    bounded(90, async {
        let mut s = server().await;
        let c = Client::builder()
            .servers(&s.connect_string())
            .session_timeout(Duration::from_secs(6))
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
            .connect()
            .await
            .expect("connect");
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let c = c.clone();
            let stop = stop.clone();
            let path = format!("/order{t}");
            c.create(&path, "0", &CreateOptions::persistent())
                .await
                .expect("create");
            tasks.push(tokio::spawn(async move {
                let (mut last_version, mut last_ok_set, mut last_issued_set) = (0, 0, 0);
                let mut next = 1u64;
                let (mut ok, mut lost) = (0, 0);
                let mut final_round = false;
                loop {
                    if stop.load(Ordering::SeqCst) {
                        final_round = true;
                    }
                    let mut calls = Vec::new();
                    let mut futs = Vec::new();
                    for i in 0..BATCH {
                        if i % 2 == 0 {
                            calls.push(Call::Set(next));
                            let f = c.set_data(&path, next.to_string(), None);
                            futs.push(futures::future::Either::Left(async move {
                                f.await.map(|st| Some((0, st.version)))
                            }));
                            next += 1;
                        } else {
                            calls.push(Call::Get);
                            let f = c.get_data(&path);
                            futs.push(futures::future::Either::Right(async move {
                                f.await.map(|(data, st)| {
                                    let v = std::str::from_utf8(&data)
                                        .expect("utf-8")
                                        .parse::<u64>()
                                        .expect("a number");
                                    Some((v, st.version))
                                })
                            }));
                        }
                    }
                    let mut results = Vec::new();
                    for f in futs {
                        let r = tokio::time::timeout(Duration::from_secs(20), f)
                            .await
                            .unwrap_or_else(|_| panic!("task {t}: a call never completed"));
                        results.push(r);
                    }
                    let (done, lost_now) = check_in_order(
                        t,
                        &calls,
                        results,
                        &mut last_version,
                        &mut last_ok_set,
                        &mut last_issued_set,
                    );
                    ok += done;
                    lost += lost_now;
                    if final_round {
                        assert_eq!(done, calls.len(), "task {t}: the last batch all succeeds");
                        return (ok, lost);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        let mut states = c.state();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            s.restart().await.expect("restart");
            tokio::time::timeout(Duration::from_secs(20), async {
                while states.next().await != Some(SessionState::Disconnected) {}
                while states.next().await != Some(SessionState::Connected) {}
            })
            .await
            .expect("reconnected");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        let mut lost = 0;
        for (t, task) in tasks.into_iter().enumerate() {
            let (ok, lost_by_task) = task.await.expect("task");
            assert!(ok > 0, "task {t} succeeded at least once");
            lost += lost_by_task;
        }
        // The restarts did hit calls in flight (else this test checked nothing).
        assert!(lost > 0, "no call was lost to a restart");
        assert_eq!(c.current_state(), SessionState::Connected);
    })
    .await;
}
