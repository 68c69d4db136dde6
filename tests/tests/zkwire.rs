//! Apache ZooKeeper's own client protocol against our server, spoken by an independent
//! client (the `zookeeper-client` crate), raw sockets (four-letter words, malformed
//! frames) and, when installed, Apache ZooKeeper's `zkCli.sh`.

use std::time::Duration;

use tests::{bounded, eventually, server, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_client::CreateOptions;
use zookeeper_client as zk;

const WAIT: Duration = Duration::from_secs(5);

async fn zk_client(s: &TestServer) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .connect(&s.connect_string())
        .await
        .expect("connect zookeeper-client")
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn open_acl() -> Vec<zk::Acl> {
    vec![zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("world", "anyone"),
    )]
}

fn mode(m: zk::CreateMode) -> zk::CreateOptions<'static> {
    m.with_acls(zk::Acls::anyone_all())
}

#[tokio::test]
async fn znode_operations_and_error_codes() {
    bounded(30, async {
        let s = server().await;
        let c = zk_client(&s).await;

        // create2 (the crate's default for 3.5+ servers) returns the Stat.
        let (stat, _) = c.create("/a", b"one", &persistent()).await.expect("create");
        assert_eq!((stat.version, stat.data_length), (0, 3));
        assert!(stat.czxid > 0 && stat.czxid == stat.mzxid);
        assert_eq!(
            c.create("/a", b"", &persistent()).await.err(),
            Some(zk::Error::NodeExists)
        );
        assert_eq!(
            c.create("/missing/x", b"", &persistent()).await.err(),
            Some(zk::Error::NoNode)
        );

        let (data, st) = c.get_data("/a").await.expect("get_data");
        assert_eq!((data.as_slice(), st.version), (&b"one"[..], 0));
        let st = c.set_data("/a", b"two", Some(0)).await.expect("set_data");
        assert_eq!(st.version, 1);
        assert_eq!(
            c.set_data("/a", b"x", Some(7)).await.err(),
            Some(zk::Error::BadVersion)
        );
        assert_eq!(c.get_data("/nope").await.err(), Some(zk::Error::NoNode));

        // exists: a missing node is None (the server answers NoNode).
        assert!(c.check_stat("/nope").await.expect("exists").is_none());
        assert_eq!(
            c.check_stat("/a").await.expect("exists").map(|s| s.version),
            Some(1)
        );

        // children: getChildren and getChildren2.
        for k in ["x", "y", "z"] {
            c.create(&format!("/a/{k}"), b"", &persistent())
                .await
                .expect("child");
        }
        let mut kids = c.list_children("/a").await.expect("getChildren");
        kids.sort();
        assert_eq!(kids, vec!["x", "y", "z"]);
        let (kids, st) = c.get_children("/a").await.expect("getChildren2");
        assert_eq!((kids.len(), st.num_children), (3, 3));
        assert_eq!(
            c.count_descendants_number("/a")
                .await
                .expect("getAllChildrenNumber"),
            3
        );
        assert_eq!(c.delete("/a", None).await.err(), Some(zk::Error::NotEmpty));
        assert_eq!(
            c.delete("/a/x", Some(5)).await.err(),
            Some(zk::Error::BadVersion)
        );
        c.delete("/a/x", Some(0)).await.expect("delete");
        assert_eq!(c.delete("/a/x", None).await.err(), Some(zk::Error::NoNode));

        // ephemerals: no children, listed by getEphemerals.
        c.create("/e1", b"", &mode(zk::CreateMode::Ephemeral))
            .await
            .expect("ephemeral");
        assert_eq!(
            c.create("/e1/kid", b"", &persistent()).await.err(),
            Some(zk::Error::NoChildrenForEphemerals)
        );
        assert_eq!(
            c.list_ephemerals("/").await.expect("getEphemerals"),
            vec!["/e1".to_string()]
        );

        // ACLs are open until ACL support lands; setACL checks existence and version.
        let (acls, st) = c.get_acl("/a").await.expect("getACL");
        assert_eq!(acls.len(), 1);
        assert_eq!(acls[0].scheme(), "world");
        assert_eq!(acls[0].id(), "anyone");
        assert_eq!(st.version, 1);
        c.set_acl("/a", &open_acl(), Some(0)).await.expect("setACL");
        assert_eq!(
            c.set_acl("/a", &open_acl(), Some(3)).await.err(),
            Some(zk::Error::BadVersion)
        );
        assert_eq!(c.get_acl("/nope").await.err(), Some(zk::Error::NoNode));

        // sync, auth (digest) and whoAmI.
        c.sync("/a").await.expect("sync");
        c.auth("digest", b"alice:secret").await.expect("auth");
        let users = c.list_auth_users().await.expect("whoAmI");
        assert!(
            users
                .iter()
                .any(|u| u.scheme() == "digest" && u.user() == "alice"),
            "{users:?}"
        );
        assert!(users.iter().any(|u| u.scheme() == "ip"), "{users:?}");

        // getConfig is getData of /zookeeper/config; reconfig is refused as by a
        // ZooKeeper without reconfigEnabled.
        c.get_config().await.expect("getConfig");
        let e = c
            .update_ensemble(
                zk::EnsembleUpdate::New {
                    ensemble: ["server.1=127.0.0.1:2888:3888;2181"].into_iter(),
                },
                None,
            )
            .await
            .expect_err("reconfig");
        assert_eq!(e, zk::Error::ReconfigDisabled);

        // The tree is unchanged by all the errors above.
        let (data, _) = c.get_data("/a").await.expect("get_data");
        assert_eq!(data, b"two");
    })
    .await;
}

#[tokio::test]
async fn sequential_container_and_ttl_nodes() {
    bounded(30, async {
        let s = server().await;
        let c = zk_client(&s).await;
        c.create("/q", b"", &persistent()).await.expect("parent");
        let (_, seq1) = c
            .create("/q/n-", b"", &mode(zk::CreateMode::PersistentSequential))
            .await
            .expect("seq");
        let (_, seq2) = c
            .create("/q/e-", b"", &mode(zk::CreateMode::EphemeralSequential))
            .await
            .expect("eseq");
        assert_eq!(seq1.into_i64() + 1, seq2.into_i64());
        let mut kids = c.list_children("/q").await.expect("ls");
        kids.sort();
        assert_eq!(kids, vec!["e-0000000001", "n-0000000000"]);

        // A container goes away once it had a child and has none.
        c.create("/box", b"", &mode(zk::CreateMode::Container))
            .await
            .expect("container");
        c.create("/box/k", b"", &persistent()).await.expect("kid");
        c.delete("/box/k", None).await.expect("delete kid");
        eventually(5, "container reaped", || async {
            c.check_stat("/box").await.ok().flatten().is_none()
        })
        .await;

        // A TTL node goes away once unmodified (and childless) for its TTL.
        let ttl = zk::CreateMode::Persistent
            .with_acls(zk::Acls::anyone_all())
            .with_ttl(Duration::from_millis(200));
        let (st, _) = c.create("/ttl", b"", &ttl).await.expect("createTTL");
        assert_ne!(st.ephemeral_owner, 0, "TTL is encoded in ephemeralOwner");
        eventually(5, "TTL node reaped", || async {
            c.check_stat("/ttl").await.ok().flatten().is_none()
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn multi_and_multi_read() {
    bounded(30, async {
        let s = server().await;
        let c = zk_client(&s).await;
        c.create("/m", b"0", &persistent()).await.expect("create");

        let mut w = c.new_multi_writer();
        w.add_create("/m/a", b"a", &persistent()).expect("op");
        w.add_set_data("/m", b"1", Some(0)).expect("op");
        w.add_check_version("/m", 1).expect("op");
        w.add_delete("/m/a", None).expect("op");
        let results = w.commit().await.expect("multi");
        assert_eq!(results.len(), 4);
        assert!(matches!(&results[0], zk::MultiWriteResult::Create { path, .. } if path == "/m/a"));
        assert!(matches!(&results[1], zk::MultiWriteResult::SetData { stat } if stat.version == 1));
        assert!(matches!(results[2], zk::MultiWriteResult::Check));
        assert!(matches!(results[3], zk::MultiWriteResult::Delete));

        // A failing op: nothing applied, the index and code reported.
        let mut w = c.new_multi_writer();
        w.add_create("/m/b", b"", &persistent()).expect("op");
        w.add_set_data("/m", b"2", Some(99)).expect("op");
        w.add_delete("/m", None).expect("op");
        match w.commit().await {
            Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                assert_eq!((index, source), (1, zk::Error::BadVersion));
            }
            other => panic!("expected a failed op, got {other:?}"),
        }
        assert!(c.check_stat("/m/b").await.expect("exists").is_none());

        // A check writer (a check op guarding writes).
        let mut w = c.new_check_writer("/m", Some(1)).expect("check writer");
        w.add_set_data("/m", b"3", None).expect("op");
        w.commit().await.expect("guarded multi");
        let mut w = c.new_check_writer("/m", Some(1)).expect("check writer");
        w.add_set_data("/m", b"4", None).expect("op");
        assert!(w.commit().await.is_err(), "stale check must fail");

        // multiRead: each op has its own result or error.
        let mut r = c.new_multi_reader();
        r.add_get_data("/m").expect("op");
        r.add_get_children("/").expect("op");
        r.add_get_data("/none").expect("op");
        let results = r.commit().await.expect("multiRead");
        assert!(matches!(&results[0], zk::MultiReadResult::Data { data, .. } if data == b"3"));
        assert!(
            matches!(&results[1], zk::MultiReadResult::Children { children } if children.contains(&"m".to_string()))
        );
        assert!(matches!(
            &results[2],
            zk::MultiReadResult::Error {
                err: zk::Error::NoNode
            }
        ));
    })
    .await;
}

#[tokio::test]
async fn one_shot_persistent_and_recursive_watches() {
    bounded(30, async {
        let s = server().await;
        let c = zk_client(&s).await;
        let w = zk_client(&s).await;

        let (st, created) = w.check_and_watch_stat("/w").await.expect("exists watch");
        assert!(st.is_none());
        c.create("/w", b"", &persistent()).await.expect("create");
        let ev = tokio::time::timeout(WAIT, created.changed())
            .await
            .expect("NodeCreated");
        assert_eq!(ev.event_type, zk::EventType::NodeCreated);
        assert_eq!(ev.path, "/w");

        let (_, _, changed) = w.get_and_watch_data("/w").await.expect("data watch");
        c.set_data("/w", b"x", None).await.expect("set");
        let ev = tokio::time::timeout(WAIT, changed.changed())
            .await
            .expect("NodeDataChanged");
        assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);

        let (_, kids) = w.list_and_watch_children("/w").await.expect("child watch");
        c.create("/w/k", b"", &persistent()).await.expect("child");
        let ev = tokio::time::timeout(WAIT, kids.changed())
            .await
            .expect("NodeChildrenChanged");
        assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);

        // Persistent: stays after firing; recursive: descendants too.
        let mut p = w
            .watch("/w", zk::AddWatchMode::Persistent)
            .await
            .expect("addWatch");
        let mut r = w
            .watch("/w", zk::AddWatchMode::PersistentRecursive)
            .await
            .expect("addWatch recursive");
        c.set_data("/w", b"1", None).await.expect("set");
        c.set_data("/w", b"2", None).await.expect("set");
        c.set_data("/w/k", b"3", None).await.expect("set kid");
        for _ in 0..2 {
            let ev = tokio::time::timeout(WAIT, p.changed())
                .await
                .expect("persistent");
            assert_eq!(
                (ev.event_type, ev.path.as_str()),
                (zk::EventType::NodeDataChanged, "/w")
            );
        }
        let mut paths = Vec::new();
        for _ in 0..3 {
            let ev = tokio::time::timeout(WAIT, r.changed())
                .await
                .expect("recursive");
            assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
            paths.push(ev.path);
        }
        assert_eq!(paths, vec!["/w", "/w", "/w/k"]);
        // removeWatches on drop; the server holds none for this session afterwards.
        drop(p);
        drop(r);
        c.set_data("/w", b"4", None).await.expect("set");
    })
    .await;
}

#[tokio::test]
async fn session_reattach_and_expiry() {
    bounded(30, async {
        let s = server().await;
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(600))
            .with_detached()
            .connect(&s.connect_string())
            .await
            .expect("connect");
        c.create("/eph", b"", &mode(zk::CreateMode::Ephemeral))
            .await
            .expect("ephemeral");
        let session = c.session().clone();
        let id = c.session_id();
        drop(c);

        // Reattach within the timeout: same session, ephemeral still there.
        let again = zk::Client::connector()
            .with_session(session.clone())
            .with_detached()
            .connect(&s.connect_string())
            .await
            .expect("reattach");
        assert_eq!(again.session_id(), id);
        assert!(again.check_stat("/eph").await.expect("exists").is_some());
        drop(again);

        // Let it expire: the ephemeral goes, and a reattach is told SessionExpired.
        let observer = zk_client(&s).await;
        eventually(10, "ephemeral removed by expiry", || async {
            observer.check_stat("/eph").await.ok().flatten().is_none()
        })
        .await;
        let e = zk::Client::connector()
            .with_session(session)
            .connect(&s.connect_string())
            .await
            .expect_err("expired session");
        assert_eq!(e, zk::Error::SessionExpired);
    })
    .await;
}

#[tokio::test]
async fn native_and_zookeeper_sessions_share_the_tree_and_watches() {
    bounded(30, async {
        let s = server().await;
        let native = tests::client(&s).await;
        let z = zk_client(&s).await;

        // native write -> ZooKeeper-protocol read and watch.
        native
            .create("/mix", "n", &zk_client::CreateOptions::persistent())
            .await
            .expect("native create");
        let (data, _, watch) = z.get_and_watch_data("/mix").await.expect("zk get");
        assert_eq!(data, b"n");
        native
            .set_data("/mix", "n2", None)
            .await
            .expect("native set");
        let ev = tokio::time::timeout(WAIT, watch.changed())
            .await
            .expect("zk sees native write");
        assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);

        // ZooKeeper-protocol write -> native read and watch.
        let (_, _, nwatch) = native
            .get_data_and_watch("/mix")
            .await
            .expect("native watch");
        z.set_data("/mix", b"z", None).await.expect("zk set");
        let ev = tokio::time::timeout(WAIT, nwatch)
            .await
            .expect("native sees zk write");
        assert_eq!(ev.event_type, zk_client::EventType::NodeDataChanged);
        let (data, _) = native.get_data("/mix").await.expect("native get");
        assert_eq!(&data[..], b"z");
    })
    .await;
}

async fn four_letter_word(s: &TestServer, word: &str) -> String {
    let mut sock = TcpStream::connect(s.connect_string())
        .await
        .expect("connect");
    sock.write_all(word.as_bytes()).await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(WAIT, sock.read_to_string(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    out
}

#[tokio::test]
async fn four_letter_words_on_the_client_port() {
    bounded(30, async {
        let s = server().await;
        assert_eq!(four_letter_word(&s, "ruok").await, "imok");
        let _c = zk_client(&s).await;
        let srvr = four_letter_word(&s, "srvr").await;
        assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
        assert!(srvr.contains("\nMode: standalone\n"), "{srvr}");
        let nodes: usize = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Node count: "))
            .and_then(|n| n.parse().ok())
            .expect("Node count line");
        assert!(nodes >= 4, "{srvr}");
        let mntr = four_letter_word(&s, "mntr").await;
        assert!(mntr.contains("zk_server_state\tstandalone\n"), "{mntr}");
        assert!(mntr.contains("zk_znode_count\t"), "{mntr}");
        assert!(mntr.contains("zk_num_alive_connections\t1\n"), "{mntr}");
        assert_eq!(four_letter_word(&s, "isro").await, "rw");
        // Not in the default allow-list.
        let refused = four_letter_word(&s, "cons").await;
        assert_eq!(
            refused,
            "cons is not executed because it is not in the whitelist.\n"
        );
        // The native protocol still works on the same port.
        let native = tests::client(&s).await;
        native.exists("/").await.expect("native exists");
    })
    .await;
}

#[tokio::test]
async fn all_words_when_allowed() {
    bounded(30, async {
        tests::init_tracing();
        let s = TestServer::start_with(|c| c.four_letter_words = vec!["*".into()])
            .await
            .expect("server");
        let _c = zk_client(&s).await;
        let cons = four_letter_word(&s, "cons").await;
        assert!(cons.contains("proto=zookeeper"), "{cons}");
        let wchs = four_letter_word(&s, "wchs").await;
        assert!(wchs.contains("Total watches:"), "{wchs}");
        assert!(four_letter_word(&s, "envi")
            .await
            .starts_with("Environment:\n"));
        let conf = four_letter_word(&s, "conf").await;
        assert!(conf.contains("tickTime=100\n"), "{conf}");
        assert!(conf.contains("maxClientCnxns=60\n"), "{conf}");
        assert!(four_letter_word(&s, "stat").await.contains("Clients:\n"));
    })
    .await;
}

/// A framed ZooKeeper ConnectRequest for a new session.
fn connect_frame() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    b.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    b.extend_from_slice(&4000i32.to_be_bytes()); // timeOut
    b.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    b.extend_from_slice(&16i32.to_be_bytes());
    b.extend_from_slice(&[0u8; 16]); // passwd
    b.push(0); // readOnly
    frame(&b)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

async fn read_frame(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, sock.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    sock.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// True once the server has closed `sock` (read returns EOF or an error).
async fn closed(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(WAIT, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_only_their_connection() {
    bounded(60, async {
        let s = server().await;
        let z = zk_client(&s).await;
        z.create("/keep", b"v", &persistent())
            .await
            .expect("create");

        // Oversized length prefix before the handshake.
        let mut sock = TcpStream::connect(s.connect_string())
            .await
            .expect("connect");
        sock.write_all(&[0x00, 0x7f, 0xff, 0xff, 1, 2, 3])
            .await
            .expect("write");
        assert!(closed(&mut sock).await, "oversized frame closes");

        // Negative length.
        let mut sock = TcpStream::connect(s.connect_string())
            .await
            .expect("connect");
        sock.write_all(&[0xff, 0xff, 0xff, 0xfe])
            .await
            .expect("write");
        assert!(closed(&mut sock).await, "negative length closes");

        // A truncated ConnectRequest.
        let mut sock = TcpStream::connect(s.connect_string())
            .await
            .expect("connect");
        sock.write_all(&frame(&[0, 0, 0, 0, 1]))
            .await
            .expect("write");
        assert!(closed(&mut sock).await, "bad ConnectRequest closes");

        // After a good handshake: a malformed body gets MarshallingError (-5) and the
        // connection stays usable; an oversized frame then closes it.
        let mut sock = TcpStream::connect(s.connect_string())
            .await
            .expect("connect");
        sock.write_all(&connect_frame()).await.expect("write");
        let resp = read_frame(&mut sock).await.expect("ConnectResponse");
        assert!(resp.len() >= 36, "ConnectResponse with readOnly");
        let mut req = Vec::new();
        req.extend_from_slice(&7i32.to_be_bytes()); // xid
        req.extend_from_slice(&4i32.to_be_bytes()); // getData
        req.extend_from_slice(&1000i32.to_be_bytes()); // path length past the end
        sock.write_all(&frame(&req)).await.expect("write");
        let reply = read_frame(&mut sock).await.expect("reply");
        assert_eq!(&reply[0..4], &7i32.to_be_bytes());
        assert_eq!(&reply[12..16], &(-5i32).to_be_bytes(), "MarshallingError");
        // Unknown opcode: Unimplemented (-6).
        let mut req = Vec::new();
        req.extend_from_slice(&8i32.to_be_bytes());
        req.extend_from_slice(&999i32.to_be_bytes());
        sock.write_all(&frame(&req)).await.expect("write");
        let reply = read_frame(&mut sock).await.expect("reply");
        assert_eq!(&reply[12..16], &(-6i32).to_be_bytes(), "Unimplemented");
        sock.write_all(&(2_000_000i32).to_be_bytes())
            .await
            .expect("write");
        assert!(
            closed(&mut sock).await,
            "oversized frame after handshake closes"
        );

        // Random garbage, many times.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for i in 0..60 {
            let mut sock = TcpStream::connect(s.connect_string())
                .await
                .expect("connect");
            if i % 2 == 0 {
                sock.write_all(&connect_frame()).await.expect("write");
                let _ = read_frame(&mut sock).await;
            }
            let n = rng.random_range(1..200);
            let mut junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            if i % 3 == 0 && junk.len() > 8 {
                // A plausible frame length, so the body reaches the decoder.
                let len = (junk.len() - 4) as i32;
                junk[..4].copy_from_slice(&len.to_be_bytes());
            }
            let _ = sock.write_all(&junk).await;
            drop(sock);
        }

        // The server and the other session are unharmed.
        let (data, _) = z.get_data("/keep").await.expect("still served");
        assert_eq!(data, b"v");
        let fresh = zk_client(&s).await;
        fresh
            .create("/after", b"", &persistent())
            .await
            .expect("new session works");
        assert_eq!(four_letter_word(&s, "ruok").await, "imok");
    })
    .await;
}

#[tokio::test]
async fn metrics_and_status_over_http() {
    bounded(30, async {
        let s = server().await;
        let c = zk_client(&s).await;
        c.create("/x", b"", &persistent()).await.expect("create");
        c.get_data("/x").await.expect("get");
        let get = |path: &'static str| admin_get(&s, path);
        let m = get("/metrics").await;
        assert!(m.contains("zk_requests_total{op=\"create2\"} 1"), "{m}");
        assert!(m.contains("zk_requests_total{op=\"getData\"} 1"), "{m}");
        assert!(
            m.contains("zk_request_latency_seconds_bucket{op=\"getData\",le=\"+Inf\"} 1"),
            "{m}"
        );
        assert!(m.contains("\nzk_znodes "), "{m}");
        assert!(m.contains("\nzk_raft_term "), "{m}");
        assert!(m.contains("\nzk_fsync_latency_seconds_count "), "{m}");
        assert!(m.contains("\nzk_log_bytes "), "{m}");
        let st = get("/status").await;
        assert!(st.contains("\"mode\":\"standalone\""), "{st}");
    })
    .await;
}

/// `GET path` on the admin port; the whole response, headers included.
async fn admin_get(s: &TestServer, path: &str) -> String {
    let admin = s.handle().expect("running").admin_addr();
    let mut sock = TcpStream::connect(admin).await.expect("admin");
    let req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    sock.read_to_string(&mut out).await.expect("read");
    out
}

/// The value of the sample `name` (labels included) in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

#[tokio::test]
async fn storage_metrics_with_fsync() {
    bounded(30, async {
        let s = TestServer::start_with(|c| {
            c.sync = zk_server::config::SyncPolicy::Always;
            c.snapshot_every = 10;
        })
        .await
        .expect("start");
        let c = zk_client(&s).await;
        for i in 0..30 {
            c.create(&format!("/f{i}"), b"some data", &persistent())
                .await
                .expect("create");
        }
        let m = admin_get(&s, "/metrics").await;
        assert!(
            m.contains("# TYPE zk_fsync_latency_seconds histogram"),
            "{m}"
        );
        let fsyncs = sample(&m, "zk_fsync_latency_seconds_count");
        assert!(fsyncs > 0.0, "{m}");
        assert_eq!(
            sample(&m, "zk_fsync_latency_seconds_bucket{le=\"+Inf\"}"),
            fsyncs
        );
        assert!(sample(&m, "zk_fsync_latency_seconds_sum") > 0.0, "{m}");
        assert!(sample(&m, "zk_fsync_latency_max_seconds") > 0.0, "{m}");
        let commits = sample(&m, "zk_group_commits_total");
        let records = sample(&m, "zk_group_commit_records_total");
        assert!(
            commits > 0.0 && records >= 30.0 && records >= commits,
            "{m}"
        );
        assert!(sample(&m, "zk_group_commit_max_records") >= 1.0, "{m}");
        assert!(sample(&m, "zk_wal_bytes_written_total") > 0.0, "{m}");
        assert!(sample(&m, "zk_log_bytes") > 0.0, "{m}");
        // Snapshots are built in the background every 10 entries.
        eventually(5, "a snapshot on disk", || async {
            sample(&admin_get(&s, "/metrics").await, "zk_snapshot_bytes") > 0.0
        })
        .await;
        let mntr = four_letter_word(&s, "mntr").await;
        assert!(mntr.contains("zk_fsync_threshold_exceed_count\t"), "{mntr}");
    })
    .await;
}

const ZKCLI_SH: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// Runs one zkCli.sh command against `server`: (exit status ok, stdout + stderr).
async fn zkcli_sh_run(server: &str, cmd: &str) -> (bool, String) {
    let out = tokio::process::Command::new(ZKCLI_SH)
        .arg("-server")
        .arg(server)
        .args(cmd.split(' '))
        .env("ZOO_LOG4J_PROP", "ERROR,CONSOLE")
        .output()
        .await
        .expect("run zkCli.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn zkcli_sh_installed() -> bool {
    let ok = std::path::Path::new(ZKCLI_SH).exists();
    if !ok {
        println!("NOTICE: {ZKCLI_SH} not installed (apt-get install -y zookeeper); skipping");
    }
    ok
}

/// Apache ZooKeeper's own CLI (Debian's `zookeeper` package) against our server.
#[tokio::test]
async fn zkcli_sh() {
    if !zkcli_sh_installed() {
        return;
    }
    bounded(120, async {
        let s = server().await;
        let server = s.connect_string();
        let run = |cmd: String| {
            let server = server.clone();
            async move { zkcli_sh_run(&server, &cmd).await }
        };
        let (_, out) = run("create /cli hello".into()).await;
        assert!(out.contains("Created /cli"), "{out}");
        let (_, out) = run("get /cli".into()).await;
        assert!(out.contains("hello"), "{out}");
        let (_, out) = run("set /cli world".into()).await;
        assert!(!out.contains("Exception"), "{out}");
        let (_, out) = run("stat /cli".into()).await;
        assert!(out.contains("dataVersion = 1"), "{out}");
        assert!(out.contains("dataLength = 5"), "{out}");
        let (_, out) = run("create -s /cli/seq- x".into()).await;
        assert!(out.contains("Created /cli/seq-0000000000"), "{out}");
        let (_, out) = run("create -e /cli/eph x".into()).await;
        assert!(out.contains("Created /cli/eph"), "{out}");
        let (_, out) = run("ls /cli".into()).await;
        assert!(
            out.contains("eph") && out.contains("seq-0000000000"),
            "{out}"
        );
        // The ephemeral goes with zkCli's session (closed, or expired: the CLI may exit
        // without closing it, as against Apache ZooKeeper).
        let native = tests::client(&s).await;
        eventually(10, "zkCli's ephemeral removed", || async {
            native.exists("/cli/eph").await.ok().flatten().is_none()
        })
        .await;
        let (_, out) = run("delete /cli".into()).await;
        assert!(out.contains("Node not empty"), "{out}");
        run("delete /cli/seq-0000000000".into()).await;
        run("delete /cli".into()).await;
        let (_, out) = run("ls /".into()).await;
        assert!(out.contains("[zookeeper]"), "{out}");
        assert!(native.exists("/cli").await.expect("exists").is_none());
    })
    .await;
}

/// zkCli.sh's quotas: `setquota` writes the limits below /zookeeper/quota, the server
/// keeps `zookeeper_stats` at the subtree's node count and bytes, `listquota` shows both,
/// `delquota` removes them. Limits are soft (Apache's default): writes past them succeed.
#[tokio::test]
async fn zkcli_sh_quotas() {
    if !zkcli_sh_installed() {
        return;
    }
    bounded(120, async {
        let s = server().await;
        let server = s.connect_string();
        let native = tests::client(&s).await;
        native
            .create("/q", "x", &CreateOptions::persistent())
            .await
            .expect("create");
        native
            .create("/q/a", "yy", &CreateOptions::persistent())
            .await
            .expect("create");
        let (_, out) = zkcli_sh_run(&server, "setquota -n 2 /q").await;
        assert!(
            !out.contains("Exception") && !out.contains("not valid"),
            "{out}"
        );
        let (_, out) = zkcli_sh_run(&server, "listquota /q").await;
        assert!(
            out.contains("Output quota for /q count=2,bytes=-1"),
            "{out}"
        );
        assert!(out.contains("Output stat for /q count=2,bytes=3"), "{out}");
        // Past the (soft) limit, then a change of data and a delete.
        native
            .create("/q/b", "zzz", &CreateOptions::persistent())
            .await
            .expect("soft limit");
        native.set_data("/q/a", "y", None).await.expect("set");
        native
            .create("/q/c", "", &CreateOptions::persistent())
            .await
            .expect("create");
        native.delete("/q/c", None).await.expect("delete");
        let (_, out) = zkcli_sh_run(&server, "listquota /q").await;
        assert!(out.contains("Output stat for /q count=3,bytes=5"), "{out}");
        let (stats, _) = native
            .get_data("/zookeeper/quota/q/zookeeper_stats")
            .await
            .expect("stats readable by any client");
        assert_eq!(&stats[..], b"count=3,bytes=5");
        zkcli_sh_run(&server, "delquota /q").await;
        let (_, out) = zkcli_sh_run(&server, "listquota /q").await;
        assert!(out.contains("quota for /q does not exist"), "{out}");
        // The rest of /zookeeper stays read-only.
        let err = native
            .create("/zookeeper/config/x", "", &CreateOptions::persistent())
            .await
            .expect_err("reserved");
        assert!(err.to_string().contains("reserved"), "{err}");
    })
    .await;
}

/// After a reconnect the client re-arms its watches with setWatches and its last zxid;
/// a change made while it was away fires at once.
#[tokio::test]
async fn set_watches_on_reconnect_fires_missed_changes() {
    bounded(30, async {
        let s = server().await;
        let proxy = tests::proxy::Proxy::start(&s.connect_string())
            .await
            .expect("proxy");
        let c = zk_client(&s).await;
        c.create("/sw", b"0", &persistent()).await.expect("create");
        let w = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(2))
            .connect(&proxy.connect_string())
            .await
            .expect("connect through proxy");
        let (_, _, data) = w.get_and_watch_data("/sw").await.expect("data watch");
        let (_, kids) = w.list_and_watch_children("/sw").await.expect("child watch");
        let mut states = w.state_watcher();

        proxy.reject(true);
        proxy.cut();
        assert_eq!(
            tokio::time::timeout(WAIT, states.changed())
                .await
                .expect("state"),
            zk::SessionState::Disconnected
        );
        c.set_data("/sw", b"1", None).await.expect("set while away");
        c.create("/sw/k", b"", &persistent())
            .await
            .expect("child while away");
        proxy.reject(false);

        let ev = tokio::time::timeout(WAIT, data.changed())
            .await
            .expect("missed data change fires");
        assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
        let ev = tokio::time::timeout(WAIT, kids.changed())
            .await
            .expect("missed child change fires");
        assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
        assert_eq!(w.get_data("/sw").await.expect("get").0, b"1");
    })
    .await;
}

#[tokio::test]
async fn pipelined_writes_and_reads_keep_session_order() {
    bounded(30, async {
        let s = server().await;
        let c = zk_client(&s).await;
        c.create("/o", b"", &persistent()).await.expect("create");
        // Writes and reads alternate, all sent before any reply (the client queues a
        // request when it is called): each read must see exactly the writes sent
        // before it, and none after it.
        let mut futs: Vec<futures::future::BoxFuture<'static, i32>> = Vec::new();
        for i in 0..50 {
            let data = i.to_string().into_bytes();
            let write = c.set_data("/o", &data, None);
            futs.push(Box::pin(async move { write.await.expect("write").version }));
            let read = c.get_data("/o");
            futs.push(Box::pin(async move { read.await.expect("read").1.version }));
        }
        let versions = futures::future::join_all(futs).await;
        for (i, pair) in versions.chunks(2).enumerate() {
            let expected = i as i32 + 1;
            assert_eq!(pair, [expected, expected], "request pair {i}");
        }
    })
    .await;
}

#[tokio::test]
async fn event_arrives_before_a_later_read_that_sees_the_change() {
    bounded(30, async {
        let s = server().await;
        let writer = zk_client(&s).await;
        let w = zk_client(&s).await;
        writer
            .create("/ord", b"0", &persistent())
            .await
            .expect("create");
        for i in 1..=20 {
            let (_, _, watcher) = w.get_and_watch_data("/ord").await.expect("watch");
            let changed = futures::FutureExt::shared(Box::pin(watcher.changed()));
            let want = i.to_string().into_bytes();
            writer.set_data("/ord", &want, None).await.expect("set");
            // Read on the watching session until it sees the new value; by then the
            // event must already have been delivered.
            loop {
                let (data, _) = w.get_data("/ord").await.expect("read");
                if data == want {
                    break;
                }
            }
            let ev = futures::FutureExt::now_or_never(changed.clone()).unwrap_or_else(|| {
                panic!("event {i} not delivered before the read that saw the change")
            });
            assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
        }
    })
    .await;
}
