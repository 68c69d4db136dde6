//! The client's session task against a scripted fake of the protocol (tests/fake): call
//! order, pipelining, watches, reconnect with re-armed watches, expiry, close. The real
//! server's behaviour is tested elsewhere.

mod fake;

use std::time::Duration;

use fake::Fake;
use futures::StreamExt;
use zk_client::{Client, CreateOptions, Error, EventType, SessionState};
use zk_proto::{CLOSE_XID, PING_XID};

const WAIT: Duration = Duration::from_secs(5);

async fn client(addr: &str, timeout_ms: u64) -> Client {
    Client::builder()
        .servers(addr)
        .session_timeout(Duration::from_millis(timeout_ms))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .connect()
        .await
        .expect("connect")
}

async fn wait_state(c: &Client, want: SessionState) {
    let mut states = c.state();
    tokio::time::timeout(WAIT, async {
        while let Some(s) = states.next().await {
            if s == want {
                return;
            }
        }
        panic!("state stream ended before {want:?}");
    })
    .await
    .expect("state in time");
}

#[tokio::test]
async fn basic_ops_errors_and_chroot() {
    let (fake, addr) = Fake::start().await;
    let root = client(&addr, 10_000).await;
    assert_eq!(root.current_state(), SessionState::Connected);
    assert_eq!(root.session_timeout(), Duration::from_secs(10));
    assert!(root.session_id() != 0);
    root.create("/app", "", &CreateOptions::persistent())
        .await
        .expect("create /app");

    let c = client(&format!("{addr}/app"), 10_000).await;
    let (p, stat) = c
        .create("/a", "x", &CreateOptions::persistent())
        .await
        .expect("create");
    assert_eq!(p, "/a");
    assert!(fake.lock().nodes.contains_key("/app/a"));
    let (data, s) = c.get_data("/a").await.expect("get");
    assert_eq!((&data[..], s.version, s.czxid), (&b"x"[..], 0, stat.czxid));
    let s = c.set_data("/a", "y", Some(0)).await.expect("set");
    assert_eq!(s.version, 1);
    let e = c
        .set_data("/a", "z", Some(0))
        .await
        .expect_err("bad version");
    assert!(
        matches!(e, Error::BadVersion { op: "set_data", ref path } if path == "/a"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "bad version for /a (set_data)");
    assert!(matches!(
        c.get_data("/nope").await,
        Err(Error::NoNode { .. })
    ));
    assert_eq!(c.exists("/nope").await.expect("exists"), None);
    assert_eq!(
        c.exists("/a").await.expect("exists").map(|s| s.version),
        Some(1)
    );
    let (seq, _) = c
        .create("/q-", "", &CreateOptions::persistent().sequential(true))
        .await
        .expect("seq");
    assert_eq!(seq, "/q-0000000001");
    let (children, _) = c.get_children("/").await.expect("children");
    assert_eq!(children.len(), 2);
    assert!(matches!(
        c.get_data("bad").await,
        Err(Error::InvalidPath(_))
    ));
    c.delete("/a", None).await.expect("delete");
    assert!(c.last_zxid() >= root.last_zxid());
}

#[tokio::test]
async fn requests_go_out_in_call_order_pipelined() {
    let (fake, addr) = Fake::start().await;
    let c = client(&addr, 10_000).await;
    // Queue 50 creates without awaiting, plus a dropped one, then await in reverse.
    let mut futures = Vec::new();
    for i in 0..50 {
        futures.push(c.create(&format!("/n{i:02}"), "", &CreateOptions::persistent()));
        if i == 10 {
            drop(c.get_data("/n00"));
        }
    }
    let mut results = Vec::new();
    while let Some(f) = futures.pop() {
        results.push(f.await.expect("create").0);
    }
    assert_eq!(results.first().map(String::as_str), Some("/n49"));
    let ops = fake.ops(c.session_id());
    let names: Vec<&str> = ops
        .iter()
        .map(|(_, o)| *o)
        .filter(|o| *o != "ping")
        .collect();
    assert_eq!(names.len(), 51);
    assert_eq!(names[11], "get_data");
    let xids: Vec<i64> = ops.iter().map(|(x, _)| *x).filter(|x| *x > 0).collect();
    assert!(xids.windows(2).all(|w| w[0] < w[1]), "{xids:?}");
    // The session is fine after the dropped future.
    assert!(c.exists("/n00").await.expect("exists").is_some());
}

#[tokio::test]
async fn oneshot_and_persistent_watches_fire() {
    let (_fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    let b = client(&addr, 10_000).await;
    a.create("/w", "0", &CreateOptions::persistent())
        .await
        .expect("create");

    let (_, _, data_w) = a.get_data_and_watch("/w").await.expect("get");
    let (none, exist_w) = a.exists_and_watch("/w/c").await.expect("exists");
    assert!(none.is_none());
    let (_, _, child_w) = a.get_children_and_watch("/w").await.expect("children");
    let mut rec = a.watch("/", true).await.expect("watch");

    b.set_data("/w", "1", None).await.expect("set");
    let e = tokio::time::timeout(WAIT, data_w)
        .await
        .expect("data event");
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/w")
    );
    b.create("/w/c", "", &CreateOptions::ephemeral())
        .await
        .expect("create child");
    let e = tokio::time::timeout(WAIT, exist_w)
        .await
        .expect("exist event");
    assert_eq!(e.event_type, EventType::NodeCreated);
    let e = tokio::time::timeout(WAIT, child_w)
        .await
        .expect("child event");
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, "/w")
    );

    let mut seen = Vec::new();
    for _ in 0..2 {
        let e = tokio::time::timeout(WAIT, rec.next())
            .await
            .expect("recursive")
            .expect("open");
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeDataChanged, "/w".to_string()),
            (EventType::NodeCreated, "/w/c".to_string())
        ]
    );
    rec.remove().await.expect("remove");
}

#[tokio::test]
async fn events_precede_the_reply_that_follows_them() {
    let (_fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    a.create("/e", "", &CreateOptions::persistent())
        .await
        .expect("create");
    let (_, _, mut w) = a.get_data_and_watch("/e").await.expect("watch");
    // Our own write: the event comes before the reply, so the watcher is ready the
    // moment set_data returns.
    a.set_data("/e", "x", None).await.expect("set");
    let e = futures::poll!(&mut w);
    assert!(
        matches!(e, std::task::Poll::Ready(ref ev) if ev.event_type == EventType::NodeDataChanged),
        "{e:?}"
    );
}

#[tokio::test]
async fn reconnect_reattaches_and_rearms_watches_with_last_zxid() {
    let (fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    let b = client(&addr, 10_000).await;
    a.create("/r", "0", &CreateOptions::persistent())
        .await
        .expect("create");
    let (_, _, w) = a.get_data_and_watch("/r").await.expect("watch");
    let mut p = a.watch("/r", false).await.expect("persistent");
    let (sid, zxid) = (a.session_id(), a.last_zxid());

    // Break A's connection and change /r before A is back.
    fake.lock()
        .sessions
        .get_mut(&sid)
        .expect("session")
        .data
        .clear();
    fake.kill(sid);
    wait_state(&a, SessionState::Disconnected).await;
    b.set_data("/r", "1", None)
        .await
        .expect("set while A is away");
    wait_state(&a, SessionState::Connected).await;

    let e = tokio::time::timeout(WAIT, w)
        .await
        .expect("missed change fires");
    assert_eq!(e.event_type, EventType::NodeDataChanged);
    {
        let st = fake.lock();
        let reattach = st
            .connects
            .iter()
            .rev()
            .find(|c| c.session_id == sid)
            .expect("reattach");
        assert_eq!(reattach.last_zxid_seen, zxid);
        let (_, sw) = st
            .set_watches
            .iter()
            .find(|(s, _)| *s == sid)
            .expect("set watches");
        assert_eq!(sw.relative_zxid, zxid);
        assert_eq!(sw.data_watches, vec!["/r"]);
        assert_eq!(sw.persistent_watches, vec!["/r"]);
    }
    assert_eq!(a.session_id(), sid);
    // The persistent watcher saw the session go and come back.
    let states: Vec<SessionState> = [p.next().await, p.next().await]
        .into_iter()
        .flatten()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        states,
        vec![SessionState::Disconnected, SessionState::Connected]
    );
}

#[tokio::test]
async fn requests_during_disconnect_fail_with_connection_loss() {
    let (fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    fake.lock().mute = true;
    let pending = a.exists("/x");
    fake.kill(a.session_id());
    let e = tokio::time::timeout(WAIT, pending)
        .await
        .expect("fails in time")
        .expect_err("lost");
    assert!(
        matches!(e, Error::ConnectionLoss { op: "exists", .. }),
        "{e:?}"
    );
    fake.lock().mute = false;
    wait_state(&a, SessionState::Connected).await;
    a.exists("/x").await.expect("works again");
}

#[tokio::test]
async fn expired_reattach_expires_everything() {
    for with_error in [false, true] {
        let (fake, addr) = Fake::start().await;
        fake.lock().expire_with_error = with_error;
        let a = client(&addr, 10_000).await;
        a.create("/x", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let (_, _, w) = a.get_data_and_watch("/x").await.expect("watch");
        let mut p = a.watch("/", true).await.expect("persistent");
        fake.expire(a.session_id());
        wait_state(&a, SessionState::Expired).await;
        let e = tokio::time::timeout(WAIT, w).await.expect("resolves");
        assert_eq!(
            (e.event_type, e.state),
            (EventType::Session, SessionState::Expired)
        );
        let mut last = None;
        while let Some(e) = tokio::time::timeout(WAIT, p.next()).await.expect("ends") {
            last = Some(e.state);
        }
        assert_eq!(last, Some(SessionState::Expired));
        let e = a.get_data("/x").await.expect_err("expired");
        assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");
        // Never a new session behind our back.
        assert_eq!(fake.lock().sessions.len(), 1);
    }
}

#[tokio::test]
async fn reattach_with_session_credentials() {
    let (fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    let b = Client::builder()
        .servers(&addr)
        .session(a.session_id(), a.session_password())
        .connect()
        .await
        .expect("reattach");
    assert_eq!(b.session_id(), a.session_id());
    let e = Client::builder()
        .servers(&addr)
        .session(0x999, b"nope".to_vec())
        .connect()
        .await
        .expect_err("unknown");
    assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");
    assert_eq!(fake.lock().sessions.len(), 1);
}

#[tokio::test]
async fn pings_keep_the_lease_and_a_silent_server_is_left() {
    let (fake, addr) = Fake::start().await;
    let a = client(&addr, 900).await;
    let lease0 = a.session_lease();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(fake.ops(a.session_id()).iter().any(|(x, _)| *x == PING_XID));
    assert!(a.session_lease() > lease0);
    // A server that stops answering is dropped after ~2/3 of the timeout.
    fake.lock().mute = true;
    wait_state(&a, SessionState::Disconnected).await;
    fake.lock().mute = false;
    wait_state(&a, SessionState::Connected).await;
}

#[tokio::test]
async fn close_ends_the_session() {
    let (fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    let b = client(&addr, 10_000).await;
    a.create("/eph", "", &CreateOptions::ephemeral())
        .await
        .expect("create");
    let (_, w) = b.exists_and_watch("/eph").await.expect("watch");
    let (_, _, mine) = a.get_data_and_watch("/eph").await.expect("watch");
    let sid = a.session_id();
    let queued = a.exists("/eph");
    a.close().await.expect("close");
    assert!(queued
        .await
        .expect("queued before close is answered")
        .is_some());
    assert_eq!(a.current_state(), SessionState::Closed);
    assert!(fake
        .ops(sid)
        .iter()
        .any(|(x, o)| *x == CLOSE_XID && *o == "close"));
    assert!(!fake.lock().nodes.contains_key("/eph"));
    let e = a.exists("/eph").await.expect_err("closed");
    assert_eq!(e, Error::Closed);
    let e = tokio::time::timeout(WAIT, mine).await.expect("resolves");
    assert_eq!(e.state, SessionState::Closed);
    drop(w);
    a.close().await.expect("idempotent");
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_session() {
    let (fake, addr) = Fake::start().await;
    let a = client(&addr, 10_000).await;
    let sid = a.session_id();
    let a2 = a.clone();
    drop(a);
    a2.exists("/").await.expect("clone still works");
    drop(a2);
    tokio::time::timeout(WAIT, async {
        while fake.lock().sessions.contains_key(&sid) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("closed in the background");
}
