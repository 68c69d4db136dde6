//! Regression tests for ZooKeeper's ACL information-leak bugs, on both protocols:
//! `exists` on a node without READ (ZOOKEEPER-2590, fixed in 3.8.4 / 3.9.2),
//! persistent and recursive watches revealing protected nodes (CVE-2024-23944),
//! `addWatch` / `setWatches` on protected nodes, and recipes creating their nodes with
//! the client's credentials (`ClientBuilder::auth` + `default_acl`). getACL's digest
//! leak (CVE-2019-0201) is covered in `acl.rs`.

use std::time::Duration;

use futures::StreamExt;
use tests::{bounded, client, raw, server};
use zk_client::{Acl, Client, Code, CreateOptions, Perms};
use zk_proto::pb;
use zk_server::testing::TestServer;
use zookeeper_client as zk;

async fn alice(s: &TestServer) -> Client {
    Client::builder()
        .servers(&s.connect_string())
        .auth("digest", "alice:pw")
        .connect()
        .await
        .expect("connect as alice")
}

fn private() -> CreateOptions {
    CreateOptions::persistent().with_acl(vec![Acl::digest(Perms::ALL, "alice", "pw")])
}

fn code<T: std::fmt::Debug>(r: zk_client::Result<T>) -> Code {
    r.expect_err("expected an error").code()
}

#[tokio::test]
async fn exists_and_get_children_need_read() {
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        owner
            .create("/secret", "", &private())
            .await
            .expect("create");
        owner
            .create("/secret/c", "", &private())
            .await
            .expect("child");
        let other = client(&s).await;
        assert_eq!(code(other.exists("/secret").await), Code::NoAuth);
        assert_eq!(code(other.exists_and_watch("/secret").await), Code::NoAuth);
        assert_eq!(code(other.get_children("/secret").await), Code::NoAuth);
        // A missing node is not protected by anything: None, as before.
        assert_eq!(other.exists("/nothing").await.expect("missing"), None);
        // The owner and open nodes are unaffected.
        assert!(owner.exists("/secret").await.expect("owner").is_some());
        assert!(other.exists("/").await.expect("root").is_some());

        // The same on Apache ZooKeeper's protocol.
        let zk = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(2))
            .connect(&s.connect_string())
            .await
            .expect("connect zookeeper-client");
        assert_eq!(
            zk.check_stat("/secret").await.err(),
            Some(zk::Error::NoAuth)
        );
        assert_eq!(
            zk.list_children("/secret").await.err(),
            Some(zk::Error::NoAuth)
        );
        assert_eq!(zk.check_stat("/nothing").await.expect("missing"), None);
    })
    .await;
}

/// Paths of the events `w` delivers until (and including) `sentinel`.
async fn paths_until(w: &mut zk_client::PersistentWatcher, sentinel: &str) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(ev) = w.next().await {
        let done = ev.path == sentinel;
        seen.push(ev.path);
        if done {
            return seen;
        }
    }
    panic!("watch ended before {sentinel}: {seen:?}");
}

#[tokio::test]
async fn recursive_watch_does_not_reveal_protected_subtrees() {
    // CVE-2024-23944: a persistent recursive watch on `/` reported the creation,
    // changes and deletion of nodes the watcher could not read.
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        let snoop = client(&s).await;
        let mut spy = snoop.watch("/", true).await.expect("recursive watch");
        let mut own = owner.watch("/", true).await.expect("owner's watch");
        // The snoop may watch a protected path that does not exist yet...
        let mut early = snoop
            .watch("/secret/later", true)
            .await
            .expect("watch on a missing path");

        owner
            .create("/secret", "", &private())
            .await
            .expect("create");
        owner.set_data("/secret", "x", None).await.expect("set");
        owner
            .create("/secret/later", "", &private())
            .await
            .expect("child");
        owner.delete("/secret/later", None).await.expect("delete");
        owner
            .create("/open", "", &CreateOptions::persistent())
            .await
            .expect("open");
        owner
            .create("/done", "", &CreateOptions::persistent())
            .await
            .expect("sentinel");

        assert_eq!(paths_until(&mut spy, "/done").await, vec!["/open", "/done"]);
        let mine = paths_until(&mut own, "/done").await;
        assert_eq!(
            mine,
            vec![
                "/secret",
                "/secret",
                "/secret/later",
                "/secret/later",
                "/open",
                "/done"
            ],
            "the owner still sees everything"
        );
        // ...but learns nothing through it either; and cannot watch existing ones.
        owner
            .create("/secret/later", "", &private())
            .await
            .expect("again");
        owner
            .create("/done2", "", &CreateOptions::persistent())
            .await
            .expect("sentinel 2");
        assert_eq!(paths_until(&mut spy, "/done2").await, vec!["/done2"]);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), early.next())
                .await
                .is_err(),
            "no event for a protected node"
        );
        assert_eq!(code(snoop.watch("/secret", false).await), Code::NoAuth);
        assert_eq!(code(snoop.watch("/secret", true).await), Code::NoAuth);

        // One-shot watches follow the same rule: a data watch set while a node was
        // open does not report its changes once it is protected.
        owner
            .create("/flip", "", &CreateOptions::persistent())
            .await
            .expect("flip");
        let (_, _, changed) = snoop.get_data_and_watch("/flip").await.expect("watch");
        owner
            .set_acl("/flip", &[Acl::digest(Perms::ALL, "alice", "pw")], None)
            .await
            .expect("protect");
        owner
            .set_data("/flip", "hidden", None)
            .await
            .expect("change");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), changed)
                .await
                .is_err(),
            "a one-shot watch must not report a change of a node it cannot read"
        );
    })
    .await;
}

#[tokio::test]
async fn zookeeper_protocol_recursive_watch_is_filtered() {
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        let zk = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(2))
            .connect(&s.connect_string())
            .await
            .expect("connect zookeeper-client");
        let mut w = zk
            .watch("/", zk::AddWatchMode::PersistentRecursive)
            .await
            .expect("addWatch");
        owner
            .create("/secret", "", &private())
            .await
            .expect("create");
        owner
            .create("/open", "", &CreateOptions::persistent())
            .await
            .expect("open");
        let ev = w.changed().await;
        assert_eq!(ev.path, "/open", "the protected node's creation is hidden");
        assert_eq!(
            zk.watch("/secret", zk::AddWatchMode::Persistent)
                .await
                .err(),
            Some(zk::Error::NoAuth)
        );
    })
    .await;
}

#[tokio::test]
async fn set_watches_skips_paths_without_read() {
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        owner
            .create("/secret", "", &private())
            .await
            .expect("create");
        owner
            .create("/open", "", &CreateOptions::persistent())
            .await
            .expect("open");
        owner.set_data("/secret", "1", None).await.expect("set");
        owner.set_data("/open", "1", None).await.expect("set");

        // A reconnecting client re-arms watches it claims to hold, from zxid 0: the
        // open node's change fires at once, the protected one is skipped silently.
        let mut rs = raw::open(
            &s.connect_string(),
            pb::ConnectRequest {
                timeout_ms: 4000,
                ..Default::default()
            },
        )
        .await
        .expect("raw session");
        let watches = pb::SetWatchesRequest {
            relative_zxid: 0,
            data_watches: vec!["/secret".into(), "/open".into()],
            child_watches: vec!["/secret".into()],
            persistent_recursive_watches: vec!["/secret".into()],
            ..Default::default()
        };
        rs.tx
            .send(pb::ClientMessage {
                kind: Some(pb::client_message::Kind::Request(pb::Request {
                    xid: 1,
                    op: Some(pb::request::Op::SetWatches(watches)),
                })),
            })
            .await
            .expect("send");
        let mut events = Vec::new();
        loop {
            let m = rs.rx.next().await.expect("stream").expect("message");
            match m.kind {
                Some(pb::server_message::Kind::Event(e)) => events.push(e.path),
                Some(pb::server_message::Kind::Response(r)) => {
                    assert_eq!(r.err, 0, "{r:?}");
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(events, vec!["/open"]);
        // Nothing was armed on the protected node: a later change reports nothing.
        owner.set_data("/secret", "2", None).await.expect("set");
        let ping = pb::request::Op::Ping(pb::PingRequest {});
        let r = rs.call(2, ping).await.expect("ping");
        assert_eq!(r.err, 0);
        let late = tokio::time::timeout(Duration::from_millis(200), rs.rx.next()).await;
        assert!(late.is_err(), "unexpected message {late:?}");
    })
    .await;
}

#[tokio::test]
async fn recipes_create_nodes_with_the_clients_acl() {
    bounded(30, async {
        let s = server().await;
        let app = Client::builder()
            .servers(&s.connect_string())
            .auth("digest", "app:secret")
            .default_acl(Acl::creator_all())
            .connect()
            .await
            .expect("connect");
        let lock = zk_recipes::Lock::new(&app, "/locks/orders").expect("lock");
        let guard = lock.acquire().await.expect("acquire");
        let outsider = client(&s).await;
        assert_eq!(code(outsider.get_children("/locks").await), Code::NoAuth);
        assert_eq!(code(outsider.exists("/locks/orders").await), Code::NoAuth);
        let (acl, _) = app.get_acl("/locks/orders").await.expect("acl");
        assert_eq!(acl, vec![Acl::digest(Perms::ALL, "app", "secret")]);
        // The same credentials on another session may use the lock.
        let peer = Client::builder()
            .servers(&s.connect_string())
            .auth("digest", "app:secret")
            .default_acl(Acl::creator_all())
            .connect()
            .await
            .expect("connect");
        let other = zk_recipes::Lock::new(&peer, "/locks/orders").expect("lock");
        assert!(other.try_acquire().await.expect("try").is_none());
        guard.release().await.expect("release");
        assert!(other.try_acquire().await.expect("try").is_some());
        // An explicit ACL still wins over the default.
        app.create(
            "/pub",
            "",
            &CreateOptions::persistent().with_acl(Acl::open_unsafe()),
        )
        .await
        .expect("explicit");
        assert!(outsider.exists("/pub").await.expect("open").is_some());
    })
    .await;
}
