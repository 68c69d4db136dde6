//! Config watch against a real server: after 100 rapid updates the watcher ends on the
//! last one; a bad value is reported and the last good one kept; compare-and-set
//! publishing; the watch carries on across an expired session (builder source).

mod b_common;

use std::time::Duration;

use b_common::{bounded, client, expire, server, short_builder};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use zk_client::Error as ZkError;
use zk_recipes::{ConfigWatch, ConfigWriter, Error};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Conf {
    n: u32,
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_final_value_after_rapid_updates_is_the_last_one() {
    bounded(30, async {
        let s = server().await;
        let writer = ConfigWriter::<Conf>::new(client(&s).await, "/config/rapid");
        let watch = ConfigWatch::<Conf>::new(client(&s).await, "/config/rapid")
            .await
            .expect("watch");
        assert!(watch.current().is_none(), "no node yet");
        let mut updates = watch.updates();
        assert!(
            matches!(updates.next().await, Some(Ok(None))),
            "starts absent"
        );
        for n in 0..100 {
            writer.publish(&Conf { n }).await.expect("publish");
        }
        tokio::time::timeout(WAIT, watch.wait_for(|v| v.is_some_and(|v| v.value.n == 99)))
            .await
            .expect("reaches the last value")
            .expect("watch alive");
        // The stream's items are in order and end on the last value too.
        let mut last = None;
        while let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(300), updates.next()).await
        {
            let n = item.expect("good").expect("present").value.n;
            assert!(last.is_none_or(|l| l < n), "{last:?} then {n}");
            last = Some(n);
        }
        assert_eq!(last, Some(99));
        let current = watch.current().expect("value");
        assert_eq!(current.stat.version, 99);
    })
    .await;
}

#[tokio::test]
async fn a_bad_value_is_reported_and_the_last_good_one_kept() {
    bounded(30, async {
        let s = server().await;
        let raw = client(&s).await;
        let writer = ConfigWriter::<Conf>::new(raw.clone(), "/config/bad");
        writer.publish(&Conf { n: 1 }).await.expect("publish");
        let watch = ConfigWatch::<Conf>::new(client(&s).await, "/config/bad")
            .await
            .expect("watch");
        let mut updates = watch.updates();
        let first = updates.next().await.expect("item").expect("good");
        assert_eq!(first.expect("present").value.n, 1);

        raw.set_data("/config/bad", "{not json", None)
            .await
            .expect("write garbage");
        let item = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("reported")
            .expect("item");
        assert!(
            matches!(item, Err(Error::Decode { ref path, .. }) if path == "/config/bad"),
            "{item:?}"
        );
        assert_eq!(watch.current().expect("kept").value.n, 1, "last good kept");

        writer.publish(&Conf { n: 2 }).await.expect("publish");
        let item = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("next")
            .expect("item");
        assert_eq!(item.expect("good").expect("present").value.n, 2);

        raw.delete("/config/bad", None).await.expect("delete");
        let item = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("next")
            .expect("item");
        assert!(matches!(item, Ok(None)), "{item:?}");
        assert!(watch.current().is_none());
    })
    .await;
}

#[tokio::test]
async fn publish_with_compare_and_set() {
    bounded(30, async {
        let s = server().await;
        let writer = ConfigWriter::<Conf>::new(client(&s).await, "/config/cas");
        let stat = writer
            .publish_if_version(&Conf { n: 1 }, None)
            .await
            .expect("create");
        assert_eq!(stat.version, 0);
        let e = writer
            .publish_if_version(&Conf { n: 9 }, None)
            .await
            .expect_err("exists");
        assert!(
            matches!(e, Error::Client(ZkError::NodeExists { .. })),
            "{e:?}"
        );
        let stat = writer
            .publish_if_version(&Conf { n: 2 }, Some(0))
            .await
            .expect("cas");
        assert_eq!(stat.version, 1);
        let e = writer
            .publish_if_version(&Conf { n: 3 }, Some(0))
            .await
            .expect_err("stale");
        assert!(
            matches!(e, Error::Client(ZkError::BadVersion { .. })),
            "{e:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_watch_survives_session_expiry_and_rereads() {
    bounded(30, async {
        let mut s = server().await;
        let writer = ConfigWriter::<Conf>::new(client(&s).await, "/config/exp");
        writer.publish(&Conf { n: 1 }).await.expect("publish");
        let builder = short_builder(&s);
        let victim = builder.clone().connect().await.expect("victim");
        // One watch on the victim's own session (ends on expiry), one on a builder
        // (renews its session and carries on).
        let plain = ConfigWatch::<Conf>::new(victim.clone(), "/config/exp")
            .await
            .expect("watch");
        let renewing = ConfigWatch::<Conf>::new(builder, "/config/exp")
            .await
            .expect("watch");
        assert_eq!(renewing.current().expect("value").value.n, 1);
        expire(&mut s, &victim).await;
        let e = tokio::time::timeout(WAIT, plain.wait_for(|_| false))
            .await
            .expect("ends")
            .expect_err("expired");
        assert!(matches!(e, Error::Expired { .. }), "{e:?}");
        assert_eq!(plain.current().expect("last good kept").value.n, 1);

        // The builder watch may have expired too (its session is short); either way it
        // follows the next write.
        writer.publish(&Conf { n: 2 }).await.expect("publish");
        tokio::time::timeout(
            WAIT,
            renewing.wait_for(|v| v.is_some_and(|v| v.value.n == 2)),
        )
        .await
        .expect("sees the write after the outage")
        .expect("alive");
    })
    .await;
}
