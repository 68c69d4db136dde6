//! The client's session behaviour against a real server: chroot, call order and
//! cancellation, connection loss, expiry (told by the server, or concluded by the client
//! when no server is reachable), reattach with credentials, close and drop, pings, and
//! leaving a silent server. Network faults come from `tests::proxy` between the client
//! and the server.

use std::time::Duration;

use futures::StreamExt;
use tests::proxy::Proxy;
use tests::raw;
use tests::{bounded, client, eventually, server};
use zk_client::{Client, CreateOptions, Error, EventType, SessionState, WatcherType};
use zk_proto::pb;

const WAIT: Duration = Duration::from_secs(5);

/// A client through `proxy` with a short reconnect backoff.
async fn via(proxy: &Proxy, timeout_ms: u64) -> Client {
    Client::builder()
        .servers(&proxy.connect_string())
        .session_timeout(Duration::from_millis(timeout_ms))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect through the proxy")
}

/// Waits until the client is in state `want` (the current state counts).
async fn wait_state(c: &Client, want: SessionState, within: Duration) {
    let mut states = c.state();
    tokio::time::timeout(within, async {
        while let Some(s) = states.next().await {
            if s == want {
                return;
            }
        }
        panic!("state stream ended before {want:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("state {want:?} in time (now {:?})", c.current_state()));
}

#[tokio::test]
async fn chroot_scopes_paths_results_errors_and_events() {
    bounded(30, async {
        let s = server().await;
        let root = client(&s).await;
        root.create("/app", "", &CreateOptions::persistent()).await.expect("create /app");
        root.create("/other", "", &CreateOptions::persistent()).await.expect("create /other");
        let c = Client::connect(&format!("{}/app", s.connect_string())).await.expect("chrooted");
        assert_eq!(c.current_state(), SessionState::Connected);

        let (p, st) = c.create("/a", "x", &CreateOptions::persistent()).await.expect("create");
        assert_eq!(p, "/a");
        let (data, rst) = root.get_data("/app/a").await.expect("visible under the chroot");
        assert_eq!((&data[..], rst.czxid), (&b"x"[..], st.czxid));
        assert!(root.exists("/a").await.expect("exists").is_none(), "not at the root");

        let (seq, _) = c
            .create("/q-", "", &CreateOptions::ephemeral().sequential(true))
            .await
            .expect("sequential");
        assert_eq!(seq, "/q-0000000001", "returned without the chroot");
        let mut kids = c.get_children("/").await.expect("children").0;
        kids.sort();
        assert_eq!(kids, vec!["a", "q-0000000001"], "`/` is the chroot");
        assert_eq!(c.get_ephemerals("/").await.expect("ephemerals"), vec![seq.clone()]);
        assert!(c.exists("/other").await.expect("exists").is_none(), "outside is invisible");

        let e = c.set_data("/a", "z", Some(7)).await.expect_err("bad version");
        assert!(matches!(e, Error::BadVersion { op: "set_data", ref path } if path == "/a"), "{e:?}");
        assert_eq!(e.to_string(), "bad version for /a (set_data)");
        assert!(matches!(c.get_data("/nope").await, Err(Error::NoNode { ref path, .. }) if path == "/nope"));
        assert!(matches!(c.get_data("bad").await, Err(Error::InvalidPath(_))));

        // Events carry client paths; recursive watches on the chroot's `/` see it all.
        let (_, _, w) = c.get_data_and_watch("/a").await.expect("watch");
        let mut all = c.watch("/", true).await.expect("recursive");
        root.set_data("/app/a", "y", None).await.expect("set");
        let ev = tokio::time::timeout(WAIT, w).await.expect("event");
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDataChanged, "/a"));
        let ev = tokio::time::timeout(WAIT, all.next()).await.expect("event").expect("open");
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDataChanged, "/a"));
        root.set_data("/other", "y", None).await.expect("set outside");
        root.create("/app/b", "", &CreateOptions::persistent()).await.expect("create inside");
        let ev = tokio::time::timeout(WAIT, all.next()).await.expect("event").expect("open");
        assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, "/b"), "nothing from outside");
    })
    .await;
}

#[tokio::test]
async fn the_event_of_an_own_write_precedes_its_reply() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/e", "", &CreateOptions::persistent()).await.expect("create");
        for i in 0..10 {
            let (_, _, mut w) = c.get_data_and_watch("/e").await.expect("watch");
            c.set_data("/e", i.to_string(), None).await.expect("set");
            // The event came before the reply on the one stream: ready at once.
            let ready = futures::poll!(&mut w);
            assert!(
                matches!(ready, std::task::Poll::Ready(ref ev) if ev.event_type == EventType::NodeDataChanged),
                "{i}: {ready:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn requests_take_effect_in_call_order_and_dropped_futures_cancel_nothing() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/q", "", &CreateOptions::persistent())
            .await
            .expect("create");
        c.create("/w", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let seq = CreateOptions::persistent().sequential(true);
        // Queue 50 sequential creates without awaiting them, with dropped futures in
        // between: a write (still takes effect), a read, a data watch and a persistent
        // watch (undone by the client when its reply comes).
        let mut futures = Vec::new();
        for i in 0..50 {
            futures.push(c.create("/q/n-", i.to_string(), &seq));
            if i == 10 {
                drop(c.create("/q/dropped-", "", &seq));
                drop(c.get_data("/q"));
                drop(c.get_data_and_watch("/w"));
                drop(c.watch("/w", true));
            }
        }
        // Await in reverse: the sequence numbers show the order of application.
        let mut created = Vec::new();
        while let Some(f) = futures.pop() {
            created.push(f.await.expect("create").0);
        }
        created.reverse();
        for (i, path) in created.iter().enumerate() {
            let n = if i <= 10 { i } else { i + 1 };
            assert_eq!(path, &format!("/q/n-{n:010}"), "create {i}");
        }
        assert!(
            c.exists("/q/dropped-0000000011")
                .await
                .expect("exists")
                .is_some(),
            "a dropped write still takes effect, in its place"
        );
        // The abandoned persistent watch was removed on the server; the dropped data
        // watch's server side stays (one-shot) and is all that is left.
        c.remove_watches("/w", WatcherType::Data)
            .await
            .expect("the dropped data watch");
        let e = c
            .remove_watches("/w", WatcherType::Any)
            .await
            .expect_err("no watch left");
        assert!(matches!(e, Error::NoWatcher { .. }), "{e:?}");
        // The session is unaffected.
        assert_eq!(c.get_children("/q").await.expect("children").0.len(), 51);
        assert_eq!(c.current_state(), SessionState::Connected);
    })
    .await;
}

#[tokio::test]
async fn requests_in_flight_or_made_while_disconnected_fail_with_connection_loss() {
    bounded(30, async {
        let s = server().await;
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let a = via(&proxy, 2000).await;
        let sid = a.session_id();
        a.create("/x", "", &CreateOptions::persistent())
            .await
            .expect("create");
        // A request the server never answers, then the connection breaks.
        proxy.pause();
        let in_flight = a.exists("/x");
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.reject(true);
        proxy.cut();
        let e = tokio::time::timeout(WAIT, in_flight)
            .await
            .expect("fails in time")
            .expect_err("lost");
        assert!(
            matches!(e, Error::ConnectionLoss { op: "exists", ref path } if path == "/x"),
            "{e:?}"
        );
        wait_state(&a, SessionState::Disconnected, WAIT).await;
        let e = tokio::time::timeout(WAIT, a.set_data("/x", "1", None))
            .await
            .expect("fails at once")
            .expect_err("disconnected");
        assert!(
            matches!(e, Error::ConnectionLoss { op: "set_data", .. }),
            "{e:?}"
        );

        proxy.resume();
        proxy.reject(false);
        wait_state(&a, SessionState::Connected, WAIT).await;
        assert_eq!(a.session_id(), sid, "the same session");
        assert!(a.exists("/x").await.expect("works again").is_some());
        assert_eq!(
            a.get_data("/x").await.expect("read").1.version,
            0,
            "the failed write was never sent"
        );
    })
    .await;
}

#[tokio::test]
async fn watches_missed_while_away_fire_after_the_reconnect() {
    bounded(30, async {
        let s = server().await;
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let a = via(&proxy, 2000).await;
        let b = client(&s).await;
        a.create("/r", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        let (_, _, data) = a.get_data_and_watch("/r").await.expect("watch");
        let mut p = a.watch("/r", false).await.expect("persistent");
        proxy.reject(true);
        proxy.cut();
        wait_state(&a, SessionState::Disconnected, WAIT).await;
        b.set_data("/r", "1", None)
            .await
            .expect("set while A is away");
        proxy.reject(false);
        wait_state(&a, SessionState::Connected, WAIT).await;
        let ev = tokio::time::timeout(WAIT, data)
            .await
            .expect("the missed change fires");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/r")
        );
        let mut seen = Vec::new();
        for _ in 0..3 {
            let ev = tokio::time::timeout(WAIT, p.next())
                .await
                .expect("event")
                .expect("open");
            seen.push((ev.event_type, ev.state));
        }
        assert_eq!(
            seen,
            vec![
                (EventType::Session, SessionState::Disconnected),
                (EventType::Session, SessionState::Connected),
                (EventType::NodeDataChanged, SessionState::Connected),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_session_the_server_expired_expires_every_watcher_and_call() {
    bounded(30, async {
        let s = server().await;
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let observer = client(&s).await;
        let a = via(&proxy, 2000).await;
        a.create("/x", "", &CreateOptions::persistent())
            .await
            .expect("create");
        a.create("/x/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("ephemeral");
        let (_, _, data) = a.get_data_and_watch("/x").await.expect("watch");
        let (_, _, kids) = a.get_children_and_watch("/x").await.expect("watch");
        let mut p = a.watch("/", true).await.expect("persistent");
        let (_, gone) = observer.exists_and_watch("/x/eph").await.expect("watch");
        let sid = a.session_id();

        // While A hears nothing, its session is taken over and closed on the server.
        proxy.pause();
        let mut thief = raw::open(
            &s.connect_string(),
            pb::ConnectRequest {
                session_id: sid,
                password: a.session_password().into(),
                timeout_ms: 2000,
                last_zxid_seen: 0,
            },
        )
        .await
        .expect("take over the session");
        let r = thief
            .call(
                zk_proto::CLOSE_XID,
                pb::request::Op::Close(pb::CloseRequest {}),
            )
            .await
            .expect("close reply");
        assert_eq!(r.err, 0, "{}", r.message);
        let ev = tokio::time::timeout(WAIT, gone)
            .await
            .expect("ephemeral removed");
        assert_eq!(ev.event_type, EventType::NodeDeleted);

        // A comes back: the server says expired, and A expires everything.
        proxy.resume();
        wait_state(&a, SessionState::Expired, WAIT).await;
        for w in [data, kids] {
            let ev = tokio::time::timeout(WAIT, w).await.expect("resolves");
            assert_eq!(
                (ev.event_type, ev.state),
                (EventType::Session, SessionState::Expired)
            );
        }
        let mut last = None;
        while let Some(ev) = tokio::time::timeout(WAIT, p.next())
            .await
            .expect("stream ends")
        {
            last = Some((ev.event_type, ev.state));
        }
        assert_eq!(last, Some((EventType::Session, SessionState::Expired)));
        let e = a.get_data("/x").await.expect_err("expired");
        assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");
        assert_eq!(
            a.session_id(),
            sid,
            "never a new session behind the caller's back"
        );
        assert!(a.close().await.is_ok(), "close after expiry is a no-op");
        assert_eq!(a.current_state(), SessionState::Expired);
    })
    .await;
}

#[tokio::test]
async fn the_client_expires_the_session_when_no_server_is_reachable_for_its_timeout() {
    bounded(30, async {
        let s = server().await;
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let observer = client(&s).await;
        let a = via(&proxy, 1000).await;
        assert_eq!(a.session_timeout(), Duration::from_millis(1000));
        a.create("/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("ephemeral");
        let (_, _, data) = a.get_data_and_watch("/eph").await.expect("watch");
        let mut states = a.state();
        assert_eq!(states.next().await, Some(SessionState::Connected));

        proxy.reject(true);
        proxy.cut();
        let cut_at = tokio::time::Instant::now();
        assert_eq!(
            tokio::time::timeout(WAIT, states.next())
                .await
                .expect("state"),
            Some(SessionState::Disconnected)
        );
        assert_eq!(
            tokio::time::timeout(WAIT, states.next())
                .await
                .expect("state"),
            Some(SessionState::Expired),
            "straight from Disconnected to Expired"
        );
        let waited = cut_at.elapsed();
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_millis(2500),
            "expired about a session timeout after the last contact, not {waited:?}"
        );
        assert_eq!(states.next().await, None, "Expired is terminal");
        let ev = tokio::time::timeout(WAIT, data)
            .await
            .expect("watch resolves");
        assert_eq!(
            (ev.event_type, ev.state),
            (EventType::Session, SessionState::Expired)
        );
        let e = a.exists("/eph").await.expect_err("expired");
        assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");

        // The server agrees (the ephemeral goes), and the client never tries again.
        eventually(5, "the server expires the session too", || async {
            observer.exists("/eph").await.expect("exists").is_none()
        })
        .await;
        let attempts = proxy.accepted_connections();
        proxy.reject(false);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            proxy.accepted_connections(),
            attempts,
            "no reconnect after expiry"
        );
        let e = a.exists("/eph").await.expect_err("still expired");
        assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn reattach_with_session_credentials() {
    bounded(30, async {
        let s = server().await;
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let a = via(&proxy, 2000).await;
        a.create("/mine", "", &CreateOptions::ephemeral())
            .await
            .expect("ephemeral");
        let (id, password) = (a.session_id(), a.session_password());
        // The process holding A loses the network and dies without closing.
        proxy.reject(true);
        proxy.cut();
        wait_state(&a, SessionState::Disconnected, WAIT).await;
        drop(a);

        let b = Client::builder()
            .servers(&s.connect_string())
            .session(id, password)
            .connect()
            .await
            .expect("reattach");
        assert_eq!(b.session_id(), id);
        assert_eq!(
            b.get_ephemerals("/").await.expect("ephemerals"),
            vec!["/mine".to_string()]
        );
        b.create("/also-mine", "", &CreateOptions::ephemeral())
            .await
            .expect("ephemeral");
        let st = b.exists("/mine").await.expect("exists").expect("kept");
        assert_eq!(st.ephemeral_owner, id);

        let e = Client::builder()
            .servers(&s.connect_string())
            .session(0x7777_0000_0000_0999, b"nope".to_vec())
            .connect()
            .await
            .expect_err("unknown session");
        assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");
        b.close().await.expect("close");
        let c = client(&s).await;
        assert!(c.exists("/mine").await.expect("exists").is_none());
        assert!(c.exists("/also-mine").await.expect("exists").is_none());
    })
    .await;
}

#[tokio::test]
async fn close_ends_the_session_and_the_client() {
    bounded(30, async {
        let s = server().await;
        let a = client(&s).await;
        let b = client(&s).await;
        a.create("/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("create");
        a.create("/p", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let (_, deleted) = b.exists_and_watch("/eph").await.expect("watch");
        // (A watch of its own on /eph would fire NodeDeleted, as the close deletes it.)
        let (_, _, mine) = a.get_data_and_watch("/p").await.expect("watch");
        let mut persistent = a.watch("/", true).await.expect("persistent");
        let (id, password) = (a.session_id(), a.session_password());
        let queued = a.exists("/eph");
        a.close().await.expect("close");
        assert!(queued
            .await
            .expect("queued before close is answered")
            .is_some());
        assert_eq!(a.current_state(), SessionState::Closed);

        let ev = tokio::time::timeout(WAIT, deleted)
            .await
            .expect("ephemeral deleted");
        assert_eq!(ev.event_type, EventType::NodeDeleted);
        let ev = tokio::time::timeout(WAIT, mine).await.expect("resolves");
        assert_eq!(
            (ev.event_type, ev.state),
            (EventType::Session, SessionState::Closed)
        );
        let mut last = None;
        while let Some(ev) = tokio::time::timeout(WAIT, persistent.next())
            .await
            .expect("ends")
        {
            last = Some(ev.state);
        }
        assert_eq!(last, Some(SessionState::Closed));
        assert_eq!(a.exists("/eph").await.expect_err("closed"), Error::Closed);
        assert_eq!(
            a.clone().get_data("/").await.expect_err("closed"),
            Error::Closed
        );
        let mut states = a.state();
        assert_eq!(states.next().await, Some(SessionState::Closed));
        assert_eq!(states.next().await, None);
        a.close().await.expect("idempotent");

        // The server closed the session (not just the connection).
        let e = Client::builder()
            .servers(&s.connect_string())
            .session(id, password)
            .connect()
            .await
            .expect_err("closed session");
        assert!(matches!(e, Error::SessionExpired { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_session() {
    bounded(30, async {
        // Ticks of 1 s allow a 20 s session: only a close removes the ephemeral in time.
        let s = tests::TestServer::start_with(|cfg| cfg.tick_ms = 1000)
            .await
            .expect("server");
        let observer = client(&s).await;
        let a = Client::builder()
            .servers(&s.connect_string())
            .session_timeout(Duration::from_secs(20))
            .connect()
            .await
            .expect("connect");
        assert_eq!(a.session_timeout(), Duration::from_secs(20));
        a.create("/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("create");
        let (_, deleted) = observer.exists_and_watch("/eph").await.expect("watch");
        let a2 = a.clone();
        drop(a);
        a2.exists("/").await.expect("a clone keeps the session");
        assert!(observer.exists("/eph").await.expect("exists").is_some());
        drop(a2);
        let ev = tokio::time::timeout(WAIT, deleted)
            .await
            .expect("closed in the background");
        assert_eq!(ev.event_type, EventType::NodeDeleted);
    })
    .await;
}

#[tokio::test]
async fn pings_keep_an_idle_session_alive_over_several_timeouts() {
    bounded(30, async {
        let s = server().await;
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let observer = client(&s).await;
        let a = via(&proxy, 600).await;
        assert_eq!(a.session_timeout(), Duration::from_millis(600));
        a.create("/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("create");
        let mut states = a.state();
        assert_eq!(states.next().await, Some(SessionState::Connected));
        let lease0 = a.session_lease();
        // Five timeouts without a request.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert!(
            futures::poll!(states.next()).is_pending(),
            "the state never changed"
        );
        assert!(
            a.session_lease() > lease0 + Duration::from_millis(2000),
            "pings renewed the lease"
        );
        assert_eq!(proxy.accepted_connections(), 1, "no reconnect");
        assert!(
            observer.exists("/eph").await.expect("exists").is_some(),
            "the server kept it"
        );
        a.exists("/eph").await.expect("still usable");
    })
    .await;
}

#[tokio::test]
async fn the_client_leaves_a_silent_server_and_reattaches() {
    bounded(30, async {
        // Ticks of 500 ms: a 3 s session, so the reattach has a second to spare.
        let s = tests::TestServer::start_with(|cfg| cfg.tick_ms = 500)
            .await
            .expect("server");
        let proxy = Proxy::start(&s.connect_string()).await.expect("proxy");
        let a = via(&proxy, 3000).await;
        assert_eq!(a.session_timeout(), Duration::from_millis(3000));
        let sid = a.session_id();
        a.create("/eph", "", &CreateOptions::ephemeral())
            .await
            .expect("create");
        let mut states = a.state();
        assert_eq!(states.next().await, Some(SessionState::Connected));

        proxy.pause();
        let paused_at = tokio::time::Instant::now();
        let pending = a.exists("/eph");
        assert_eq!(
            tokio::time::timeout(WAIT, states.next())
                .await
                .expect("state"),
            Some(SessionState::Disconnected)
        );
        let waited = paused_at.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited <= Duration::from_millis(2500),
            "left after about two thirds of the timeout without a word, not {waited:?}"
        );
        let e = pending.await.expect_err("unanswered");
        assert!(matches!(e, Error::ConnectionLoss { .. }), "{e:?}");
        proxy.resume();
        assert_eq!(
            tokio::time::timeout(WAIT, states.next())
                .await
                .expect("state"),
            Some(SessionState::Connected)
        );
        assert_eq!(a.session_id(), sid);
        assert!(proxy.accepted_connections() >= 2, "a new connection");
        assert!(
            a.exists("/eph").await.expect("exists").is_some(),
            "the session lived on"
        );
    })
    .await;
}
