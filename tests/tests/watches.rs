//! Watches through the client against a real server: one-shot data, exists and child
//! watches, persistent and recursive watches, removal, and the ordering guarantee.

use std::time::Duration;

use futures::StreamExt;
use tests::{bounded, client, server};
use zk_client::{Code, CreateOptions, EventType, WatcherType};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn one_shot_watches_fire_once_with_the_right_type() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        let w = client(&s).await;

        // exists on a missing node fires on create.
        let (stat, created) = w.exists_and_watch("/n").await.expect("exists watch");
        assert!(stat.is_none());
        let (_, st) = c
            .create("/n", "a", &CreateOptions::persistent())
            .await
            .expect("create");
        let ev = tokio::time::timeout(WAIT, created)
            .await
            .expect("NodeCreated");
        assert_eq!(ev.event_type, EventType::NodeCreated);
        assert_eq!(ev.path, "/n");
        assert_eq!(ev.zxid, st.czxid, "events carry the zxid that caused them");

        // data watch: fires once.
        let (_, _, changed) = w.get_data_and_watch("/n").await.expect("data watch");
        c.set_data("/n", "b", None).await.expect("set");
        c.set_data("/n", "c", None).await.expect("set again");
        let ev = tokio::time::timeout(WAIT, changed)
            .await
            .expect("NodeDataChanged");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);

        // child watch: fires on a child create.
        let (_, _, kids) = w.get_children_and_watch("/n").await.expect("child watch");
        c.create("/n/k", "", &CreateOptions::persistent())
            .await
            .expect("child");
        let ev = tokio::time::timeout(WAIT, kids)
            .await
            .expect("NodeChildrenChanged");
        assert_eq!(ev.event_type, EventType::NodeChildrenChanged);
        assert_eq!(ev.path, "/n");

        // delete fires the data watch with NodeDeleted.
        let (_, _, gone) = w.get_data_and_watch("/n/k").await.expect("data watch");
        c.delete("/n/k", None).await.expect("delete");
        let ev = tokio::time::timeout(WAIT, gone).await.expect("NodeDeleted");
        assert_eq!(ev.event_type, EventType::NodeDeleted);

        // get_data on a missing node sets no watch and fails.
        let e = w.get_data_and_watch("/none").await.expect_err("missing");
        assert_eq!(e.code(), Code::NoNode);
    })
    .await;
}

#[tokio::test]
async fn persistent_and_recursive_watches_stay() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        let w = client(&s).await;
        c.create("/cfg", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let mut flat = w.watch("/cfg", false).await.expect("persistent");
        let mut deep = w.watch("/cfg", true).await.expect("recursive");

        c.set_data("/cfg", "1", None).await.expect("set");
        c.create("/cfg/a", "", &CreateOptions::persistent())
            .await
            .expect("child");
        c.set_data("/cfg/a", "2", None).await.expect("set child");
        c.set_data("/cfg", "3", None).await.expect("set again");

        let mut got = Vec::new();
        for _ in 0..3 {
            let ev = tokio::time::timeout(WAIT, flat.next())
                .await
                .expect("event")
                .expect("stream");
            got.push((ev.event_type, ev.path));
        }
        assert_eq!(
            got,
            vec![
                (EventType::NodeDataChanged, "/cfg".to_string()),
                (EventType::NodeChildrenChanged, "/cfg".to_string()),
                (EventType::NodeDataChanged, "/cfg".to_string()),
            ]
        );
        let mut got = Vec::new();
        for _ in 0..4 {
            let ev = tokio::time::timeout(WAIT, deep.next())
                .await
                .expect("event")
                .expect("stream");
            got.push((ev.event_type, ev.path));
        }
        assert_eq!(
            got,
            vec![
                (EventType::NodeDataChanged, "/cfg".to_string()),
                (EventType::NodeCreated, "/cfg/a".to_string()),
                (EventType::NodeDataChanged, "/cfg/a".to_string()),
                (EventType::NodeDataChanged, "/cfg".to_string()),
            ],
            "recursive watches never see NodeChildrenChanged"
        );
    })
    .await;
}

#[tokio::test]
async fn removed_watches_do_not_fire() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        let w = client(&s).await;
        c.create("/rw", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let mut stream = w.watch("/rw", false).await.expect("persistent");
        w.remove_watches("/rw", WatcherType::Any)
            .await
            .expect("remove");
        c.set_data("/rw", "x", None).await.expect("set");
        // Either the stream ends or yields only a removal notice; never NodeDataChanged.
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        {
            assert_ne!(ev.event_type, EventType::NodeDataChanged, "{ev:?}");
        }
        let e = w
            .remove_watches("/rw", WatcherType::Data)
            .await
            .expect_err("nothing left");
        assert_eq!(e.code(), Code::NoWatcher);
    })
    .await;
}

#[tokio::test]
async fn event_arrives_before_a_later_read_that_sees_the_change() {
    bounded(30, async {
        let s = server().await;
        let writer = client(&s).await;
        let w = client(&s).await;
        writer
            .create("/ord", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        for i in 1..=20 {
            let (_, _, watcher) = w.get_data_and_watch("/ord").await.expect("watch");
            let watcher = futures::FutureExt::shared(Box::pin(watcher));
            writer
                .set_data("/ord", i.to_string(), None)
                .await
                .expect("set");
            // Read on the watching session until it sees the new value; by then the
            // event must already have been delivered.
            loop {
                let (data, _) = w.get_data("/ord").await.expect("read");
                if data == i.to_string() {
                    break;
                }
            }
            let ev = futures::FutureExt::now_or_never(watcher.clone()).unwrap_or_else(|| {
                panic!("event {i} not delivered before the read that saw the change")
            });
            assert_eq!(ev.event_type, EventType::NodeDataChanged);
        }
    })
    .await;
}

#[tokio::test]
async fn removing_a_persistent_watch_leaves_a_one_shot_watch_working() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        let w = client(&s).await;
        c.create("/pw", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        let flat = w.watch("/pw", false).await.expect("persistent");
        let mut deep = w.watch("/pw", true).await.expect("recursive");
        let (_, _, data) = w.get_data_and_watch("/pw").await.expect("data watch");
        let (_, _, kids) = w.get_children_and_watch("/pw").await.expect("child watch");
        flat.remove().await.expect("remove the persistent watch");

        c.set_data("/pw", "1", None).await.expect("set");
        let ev = tokio::time::timeout(WAIT, data)
            .await
            .expect("the data watch still fires");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/pw")
        );
        let ev = tokio::time::timeout(WAIT, deep.next())
            .await
            .expect("recursive")
            .expect("open");
        assert_eq!(
            ev.event_type,
            EventType::NodeDataChanged,
            "the other mode stays"
        );
        c.create("/pw/k", "", &CreateOptions::persistent())
            .await
            .expect("child");
        let ev = tokio::time::timeout(WAIT, kids)
            .await
            .expect("the child watch still fires");
        assert_eq!(ev.event_type, EventType::NodeChildrenChanged);
        let ev = tokio::time::timeout(WAIT, deep.next())
            .await
            .expect("recursive")
            .expect("open");
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeCreated, "/pw/k")
        );
    })
    .await;
}

#[tokio::test]
async fn remove_watches_by_persistent_type_on_the_wire() {
    use tests::raw;
    use zk_proto::pb::{self, request::Op};
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/t", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let mut r = raw::open(
            &s.connect_string(),
            pb::ConnectRequest {
                timeout_ms: 2000,
                ..Default::default()
            },
        )
        .await
        .expect("raw session");
        let mut xid = 0;
        let mut call = |op: Op| {
            xid += 1;
            (xid, op)
        };
        let add = |mode: pb::AddWatchMode| {
            Op::AddWatch(pb::AddWatchRequest {
                path: "/t".into(),
                mode: mode as i32,
            })
        };
        let remove = |t: pb::WatcherType| {
            Op::RemoveWatches(pb::RemoveWatchesRequest {
                path: "/t".into(),
                watcher_type: t as i32,
                check_only: false,
            })
        };
        let get = Op::GetData(pb::GetDataRequest {
            path: "/t".into(),
            watch: true,
        });
        for op in [
            add(pb::AddWatchMode::PersistentWatch),
            add(pb::AddWatchMode::PersistentRecursiveWatch),
            get,
        ] {
            let (x, op) = call(op);
            assert_eq!(r.call(x, op).await.expect("reply").err, 0);
        }
        // Each persistent type removes its own mode only, once.
        for (t, code) in [
            (pb::WatcherType::Persistent, Code::Ok),
            (pb::WatcherType::Persistent, Code::NoWatcher),
            (pb::WatcherType::PersistentRecursive, Code::Ok),
            (pb::WatcherType::PersistentRecursive, Code::NoWatcher),
            (pb::WatcherType::Data, Code::Ok),
            (pb::WatcherType::Any, Code::NoWatcher),
        ] {
            let (x, op) = call(remove(t));
            let resp = r.call(x, op).await.expect("reply");
            assert_eq!(Code::from_i32(resp.err), code, "{t:?}: {}", resp.message);
        }
    })
    .await;
}

/// A persistent watcher dropped and a new one asked for at once on the same path: the
/// removal (handled by the client's session task) is written before the new AddWatch
/// (which the caller may write directly), so the new watch stays armed on the server.
#[tokio::test]
async fn a_watch_asked_for_right_after_dropping_one_on_the_same_path_stays_armed() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        let w = client(&s).await;
        c.create("/again", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        for round in 0..20 {
            let old = w.watch("/again", false).await.expect("persistent");
            drop(old);
            // Called right after the drop queued the removal.
            let new = w.watch("/again", false);
            let reads: Vec<_> = (0..4).map(|_| w.get_data("/again")).collect();
            let mut new = new.await.expect("persistent again");
            for r in reads {
                r.await.expect("read");
            }
            c.set_data("/again", format!("{round}"), None)
                .await
                .expect("set");
            let ev = tokio::time::timeout(WAIT, new.next())
                .await
                .expect("the new watch fires")
                .expect("stream");
            assert_eq!(
                (ev.event_type, ev.path.as_str()),
                (EventType::NodeDataChanged, "/again"),
                "round {round}"
            );
        }
    })
    .await;
}
