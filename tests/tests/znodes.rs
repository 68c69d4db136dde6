//! The data model through the client against a real server: every op, Stat
//! bookkeeping, versions, node kinds, limits and errors.

use std::time::Duration;

use bytes::Bytes;
use tests::{bounded, client, eventually, server};
use zk_client::{Code, CreateMode, CreateOptions, Error};

#[tokio::test]
async fn create_get_set_delete_with_full_stat() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        let (path, st) = c
            .create("/a", "hello", &CreateOptions::persistent())
            .await
            .expect("create");
        assert_eq!(path, "/a");
        assert_eq!((st.version, st.cversion, st.aversion), (0, 0, 0));
        assert_eq!(st.czxid, st.mzxid);
        assert_eq!(st.czxid, st.pzxid);
        assert_eq!(st.data_length, 5);
        assert_eq!(st.ephemeral_owner, 0);
        assert!(st.ctime > 0 && st.ctime == st.mtime);

        let (data, st2) = c.get_data("/a").await.expect("get");
        assert_eq!(data, Bytes::from("hello"));
        assert_eq!(st2, st);

        let root_before = c.exists("/").await.expect("exists /").expect("root");
        c.create("/a/b", "", &CreateOptions::persistent())
            .await
            .expect("child");
        let parent = c.exists("/a").await.expect("exists").expect("parent stat");
        assert_eq!(parent.num_children, 1);
        assert_eq!(parent.cversion, 1);
        assert!(parent.pzxid > st.pzxid);
        assert_eq!(
            parent.mzxid, st.mzxid,
            "a child create does not touch the parent's mzxid"
        );
        assert_eq!(parent.version, 0);

        let st3 = c.set_data("/a", "world!", Some(0)).await.expect("set");
        assert_eq!(st3.version, 1);
        assert_eq!(st3.data_length, 6);
        assert!(st3.mzxid > st.mzxid);
        assert_eq!(st3.czxid, st.czxid);

        let e = c
            .set_data("/a", "x", Some(0))
            .await
            .expect_err("stale version");
        assert_eq!(e.code(), Code::BadVersion);
        assert!(e.to_string().contains("/a"), "{e}");
        let e = c.delete("/a", None).await.expect_err("has children");
        assert_eq!(e.code(), Code::NotEmpty);
        let e = c.delete("/a/b", Some(7)).await.expect_err("bad version");
        assert_eq!(e.code(), Code::BadVersion);
        c.delete("/a/b", Some(0)).await.expect("delete child");
        c.delete("/a", Some(1)).await.expect("delete");
        assert_eq!(c.exists("/a").await.expect("exists"), None);
        let root_after = c.exists("/").await.expect("exists /").expect("root");
        assert_eq!(
            root_after.cversion,
            root_before.cversion + 1,
            "deleting /a bumps the root's cversion"
        );
        assert_eq!(root_after.num_children, root_before.num_children - 1);

        let e = c.get_data("/a").await.expect_err("gone");
        assert_eq!(e.code(), Code::NoNode);
        assert!(e.to_string().contains("/a"), "{e}");
        let e = c
            .create("/x/y", "", &CreateOptions::persistent())
            .await
            .expect_err("no parent");
        assert_eq!(e.code(), Code::NoNode);
        c.create("/dup", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let e = c
            .create("/dup", "", &CreateOptions::persistent())
            .await
            .expect_err("exists");
        assert_eq!(e.code(), Code::NodeExists);
    })
    .await;
}

#[tokio::test]
async fn children_are_listed_and_counted() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/p", "", &CreateOptions::persistent())
            .await
            .expect("p");
        for n in ["c", "a", "b"] {
            c.create(&format!("/p/{n}"), "", &CreateOptions::persistent())
                .await
                .expect("child");
        }
        c.create("/p/a/deep", "", &CreateOptions::persistent())
            .await
            .expect("deep");
        let (mut kids, st) = c.get_children("/p").await.expect("children");
        kids.sort();
        assert_eq!(kids, vec!["a", "b", "c"]);
        assert_eq!(st.num_children, 3);
        assert_eq!(c.get_all_children_number("/p").await.expect("count"), 4);
        let e = c.get_children("/nope").await.expect_err("missing");
        assert_eq!(e.code(), Code::NoNode);
    })
    .await;
}

#[tokio::test]
async fn sequential_numbers_come_from_the_parent_cversion() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/q", "", &CreateOptions::persistent())
            .await
            .expect("q");
        let seq = CreateOptions::new(CreateMode::PersistentSequential);
        let (p0, _) = c.create("/q/item-", "", &seq).await.expect("seq");
        assert_eq!(p0, "/q/item-0000000000");
        c.create("/q/plain", "", &CreateOptions::persistent())
            .await
            .expect("plain");
        c.delete("/q/plain", None).await.expect("delete");
        // cversion is now 3: created item, created plain, deleted plain.
        let (p1, _) = c.create("/q/item-", "", &seq).await.expect("seq");
        assert_eq!(p1, "/q/item-0000000003");
        let (p2, _) = c
            .create("/q/", "", &seq)
            .await
            .expect("seq with trailing slash");
        assert_eq!(p2, "/q/0000000004");
    })
    .await;
}

#[tokio::test]
async fn ephemerals_belong_to_their_session() {
    bounded(20, async {
        let s = server().await;
        let owner = client(&s).await;
        let other = client(&s).await;
        let (_, st) = owner
            .create("/e", "", &CreateOptions::ephemeral())
            .await
            .expect("ephemeral");
        assert_eq!(st.ephemeral_owner, owner.session_id());
        let e = owner
            .create("/e/child", "", &CreateOptions::persistent())
            .await
            .expect_err("no children for ephemerals");
        assert_eq!(e.code(), Code::NoChildrenForEphemerals);
        owner
            .create(
                "/e2-",
                "",
                &CreateOptions::new(CreateMode::EphemeralSequential),
            )
            .await
            .expect("ephemeral sequential");
        let mine = owner.get_ephemerals("/").await.expect("ephemerals");
        assert_eq!(mine.len(), 2);
        assert!(mine.contains(&"/e".to_string()));
        assert!(other.get_ephemerals("/").await.expect("none").is_empty());
        owner.close().await.expect("close");
        assert_eq!(other.exists("/e").await.expect("exists"), None);
        let (kids, _) = other.get_children("/").await.expect("root");
        assert!(!kids.iter().any(|k| k.starts_with("e2-")), "{kids:?}");
        let e = owner.get_data("/").await.expect_err("closed client");
        assert!(
            matches!(e, Error::Closed | Error::SessionExpired { .. })
                || e.code() == Code::SessionExpired,
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn containers_and_ttl_nodes_are_reaped() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/box", "", &CreateOptions::container())
            .await
            .expect("container");
        c.create("/box/x", "", &CreateOptions::persistent())
            .await
            .expect("child");
        // A container with a child stays.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(c.exists("/box").await.expect("exists").is_some());
        c.delete("/box/x", None).await.expect("delete child");
        eventually(10, "empty container removed", || async {
            c.exists("/box").await.expect("exists").is_none()
        })
        .await;
        // A never-used container is not removed (it never had a child).
        c.create("/fresh", "", &CreateOptions::container())
            .await
            .expect("container");

        let ttl =
            CreateOptions::new(CreateMode::PersistentWithTtl).with_ttl(Duration::from_millis(300));
        let (_, st) = c.create("/ttl", "", &ttl).await.expect("ttl node");
        assert_eq!(
            st.ephemeral_owner as u64 >> 56,
            0xFF,
            "TTL is encoded like ZooKeeper"
        );
        eventually(10, "expired TTL node removed", || async {
            c.exists("/ttl").await.expect("exists").is_none()
        })
        .await;
        assert!(c.exists("/fresh").await.expect("exists").is_some());
        let bad = CreateOptions::new(CreateMode::PersistentWithTtl);
        let e = c
            .create("/nottl", "", &bad)
            .await
            .expect_err("ttl required");
        assert_eq!(e.code(), Code::BadArguments);
    })
    .await;
}

#[tokio::test]
async fn oversized_values_are_rejected_and_change_nothing() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/v", "small", &CreateOptions::persistent())
            .await
            .expect("create");
        let big = Bytes::from(vec![7u8; 2 * 1024 * 1024]);
        let e = c
            .set_data("/v", big.clone(), None)
            .await
            .expect_err("too big");
        assert_eq!(e.code(), Code::BadArguments);
        assert!(e.to_string().contains("bytes"), "{e}");
        let e = c
            .create("/big", big, &CreateOptions::persistent())
            .await
            .expect_err("too big");
        assert_eq!(e.code(), Code::BadArguments);
        let (data, st) = c.get_data("/v").await.expect("still there");
        assert_eq!(data, Bytes::from("small"));
        assert_eq!(st.version, 0);
        assert!(c.exists("/big").await.expect("exists").is_none());
        // The session is still usable.
        c.set_data("/v", vec![1u8; 1024 * 1024], None)
            .await
            .expect("1 MiB is allowed");
    })
    .await;
}

#[tokio::test]
async fn invalid_paths_and_reserved_nodes_are_rejected() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        for bad in ["a", "/a/", "/a//b", "/a/./b", "/a/../b", "/a\u{1}"] {
            let e = c
                .create(bad, "", &CreateOptions::persistent())
                .await
                .expect_err(bad);
            assert!(
                matches!(e, Error::InvalidPath(_)) || e.code() == Code::BadArguments,
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("path"), "{bad}: {e}");
        }
        assert!(c.exists("/zookeeper").await.expect("exists").is_some());
        let e = c.delete("/zookeeper", None).await.expect_err("reserved");
        assert_eq!(e.code(), Code::BadArguments);
        let e = c
            .create("/zookeeper/mine", "", &CreateOptions::persistent())
            .await
            .expect_err("reserved");
        assert_eq!(e.code(), Code::BadArguments);
        let e = c
            .set_data("/zookeeper", "x", None)
            .await
            .expect_err("reserved");
        assert_eq!(e.code(), Code::BadArguments);
    })
    .await;
}

#[tokio::test]
async fn sync_then_read_sees_other_sessions_writes() {
    bounded(20, async {
        let s = server().await;
        let a = client(&s).await;
        let b = client(&s).await;
        a.create("/s", "1", &CreateOptions::persistent())
            .await
            .expect("create");
        b.sync("/s").await.expect("sync");
        assert_eq!(b.get_data("/s").await.expect("read").0, Bytes::from("1"));
    })
    .await;
}

#[tokio::test]
async fn pipelined_requests_keep_session_order() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/o", "", &CreateOptions::persistent())
            .await
            .expect("create");
        // Many writes and reads in flight at once, issued in order: each read must see
        // exactly the writes issued before it, and nothing after it.
        let mut futs: Vec<futures::future::BoxFuture<'_, i32>> = Vec::new();
        for i in 0..50 {
            let c1 = c.clone();
            let c2 = c.clone();
            futs.push(Box::pin(async move {
                c1.set_data("/o", i.to_string(), None)
                    .await
                    .expect("write")
                    .version
            }));
            futs.push(Box::pin(async move {
                c2.get_data("/o").await.expect("read").1.version
            }));
        }
        let versions = futures::future::join_all(futs).await;
        for (i, pair) in versions.chunks(2).enumerate() {
            let expected = i as i32 + 1;
            assert_eq!(pair, [expected, expected], "request pair {i}");
        }
    })
    .await;
}
