//! Service registry against a real server: instances appear in and disappear from every
//! cache (a closed session's instance goes); registering twice updates; a registry on a
//! builder registers again after its session expired.

mod b_common;

use std::time::Duration;

use b_common::{bounded, client, eventually, expire, server, short_builder};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use zk_recipes::{Pick, Registry, ServiceChange, ServiceInstance};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    zone: String,
}

fn instance(id: &str, port: u16) -> ServiceInstance<Meta> {
    ServiceInstance::new(id, "127.0.0.1", port, Meta { zone: "a".into() })
}

fn ids(list: &[ServiceInstance<Meta>]) -> Vec<String> {
    list.iter().map(|i| i.id.clone()).collect()
}

#[tokio::test]
async fn instances_appear_update_and_disappear_from_every_cache() {
    bounded(30, async {
        let s = server().await;
        let a_client = client(&s).await;
        let a = Registry::<Meta>::new(a_client.clone());
        let b = Registry::<Meta>::new(client(&s).await);
        let watcher1 = Registry::<Meta>::new(client(&s).await);
        let watcher2 = Registry::<Meta>::new(client(&s).await);
        let cache1 = watcher1.discover("api").await.expect("discover");
        let cache2 = watcher2.discover("api").await.expect("discover");
        assert!(cache1.instances().is_empty());
        assert_eq!(cache1.pick(Pick::Random), None);
        let mut changes = cache1.changes();

        a.register("api", instance("a1", 1000))
            .await
            .expect("register");
        b.register("api", instance("b1", 2000))
            .await
            .expect("register");
        for cache in [&cache1, &cache2] {
            tokio::time::timeout(Duration::from_secs(5), cache.wait_for(|l| l.len() == 2))
                .await
                .expect("both appear")
                .expect("cache alive");
            assert_eq!(ids(&cache.instances()), vec!["a1", "b1"]);
        }
        let first = changes.next().await.expect("change");
        assert!(matches!(first, ServiceChange::Added(ref i) if i.id == "a1" || i.id == "b1"));

        // Round robin takes turns; random picks one of them.
        let picks: Vec<String> = (0..4)
            .map(|_| cache1.pick(Pick::RoundRobin).expect("pick").id)
            .collect();
        assert!(picks.windows(2).all(|w| w[0] != w[1]), "{picks:?}");
        let r = cache2.pick(Pick::Random).expect("pick");
        assert!(r.id == "a1" || r.id == "b1");

        // Registering again with the same id updates, never duplicates.
        a.register("api", instance("a1", 1001))
            .await
            .expect("update");
        tokio::time::timeout(
            Duration::from_secs(5),
            cache2.wait_for(|l| l.iter().any(|i| i.id == "a1" && i.port == 1001)),
        )
        .await
        .expect("update seen")
        .expect("cache alive");
        assert_eq!(ids(&cache2.instances()), vec!["a1", "b1"]);
        let (kids, _) = a_client
            .get_children("/services/api")
            .await
            .expect("children");
        assert_eq!(kids.len(), 2);

        // A's session closes: a1 is gone from every cache.
        a_client.close().await.expect("close");
        for cache in [&cache1, &cache2] {
            tokio::time::timeout(Duration::from_secs(5), cache.wait_for(|l| l.len() == 1))
                .await
                .expect("a1 disappears")
                .expect("cache alive");
            assert_eq!(ids(&cache.instances()), vec!["b1"]);
        }
        let mut removed = false;
        while let Ok(Some(change)) =
            tokio::time::timeout(Duration::from_millis(200), changes.next()).await
        {
            removed |= matches!(change, ServiceChange::Removed(ref i) if i.id == "a1");
        }
        assert!(removed, "the change stream reports the removal");

        // Unregister removes at once.
        b.unregister("api", "b1").await.expect("unregister");
        tokio::time::timeout(Duration::from_secs(5), cache1.wait_for(|l| l.is_empty()))
            .await
            .expect("b1 disappears")
            .expect("cache alive");
    })
    .await;
}

#[tokio::test]
async fn a_builder_registry_registers_again_after_expiry() {
    bounded(30, async {
        let mut s = server().await;
        let registry = Registry::<Meta>::new(short_builder(&s));
        registry
            .register("db", instance("db-1", 5432))
            .await
            .expect("register");
        let observer = client(&s).await;
        let watcher = Registry::<Meta>::new(observer.clone());
        let cache = watcher.discover("db").await.expect("discover");
        assert_eq!(ids(&cache.instances()), vec!["db-1"]);
        let old = registry.source().client().await.expect("client");
        let (_, before) = observer
            .get_data("/services/db/db-1")
            .await
            .expect("registered");
        assert_eq!(before.ephemeral_owner, old.session_id());

        expire(&mut s, &old).await;
        eventually(10, "re-registered under a new session", || async {
            match observer.get_data("/services/db/db-1").await {
                Ok((_, stat)) => stat.ephemeral_owner != old.session_id(),
                Err(_) => false,
            }
        })
        .await;
        tokio::time::timeout(
            Duration::from_secs(5),
            cache.wait_for(|l| ids(l) == vec!["db-1"]),
        )
        .await
        .expect("back in the cache")
        .expect("cache alive");

        // A close unregisters.
        registry.close().await.expect("close");
        tokio::time::timeout(Duration::from_secs(5), cache.wait_for(|l| l.is_empty()))
            .await
            .expect("gone after close")
            .expect("cache alive");
    })
    .await;
}

#[tokio::test]
async fn a_cache_on_a_plain_client_stops_when_its_session_expires() {
    bounded(30, async {
        let mut s = server().await;
        let c = short_builder(&s).connect().await.expect("connect");
        let cache = Registry::<Meta>::new(c.clone())
            .discover("x")
            .await
            .expect("discover");
        assert!(cache.stopped().is_none());
        expire(&mut s, &c).await;
        let e = tokio::time::timeout(Duration::from_secs(5), cache.wait_for(|_| false))
            .await
            .expect("stops")
            .expect_err("stopped");
        assert!(matches!(e, zk_recipes::Error::Expired { .. }), "{e:?}");
        assert!(matches!(
            cache.stopped(),
            Some(zk_recipes::Error::Expired { .. })
        ));
    })
    .await;
}
