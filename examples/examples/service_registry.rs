//! Service registry: three instances of a service register themselves, a client
//! discovers them and picks instances round-robin and at random, one instance leaves
//! (its session closes) and another re-registers with a new port; the cache follows.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example service_registry` (`ZK_SERVERS` overrides the
//! default `127.0.0.1:2181`).

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use zk_client::Client;
use zk_recipes::{Pick, Registry, ServiceChange, ServiceInstance};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    zone: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let service = format!("demo-api-{}", std::process::id());

    // A client that discovers the service and prints every change.
    let discovery = Registry::<Meta>::new(Client::connect(&servers).await?);
    let cache = discovery.discover(&service).await?;
    let mut changes = cache.changes();
    let printer = tokio::spawn(async move {
        while let Some(change) = changes.next().await {
            match change {
                ServiceChange::Added(i) => println!("  + {} at {}:{}", i.id, i.address, i.port),
                ServiceChange::Updated(i) => println!("  ~ {} now {}:{}", i.id, i.address, i.port),
                ServiceChange::Removed(i) => println!("  - {}", i.id),
            }
        }
    });

    // Three instances, each with its own session (a builder: the registry would
    // re-register after an expiry).
    let mut instances = Vec::new();
    for (i, zone) in ["a", "b", "c"].into_iter().enumerate() {
        let registry = Registry::<Meta>::new(Client::builder().servers(&servers));
        let id = format!("api-{i}");
        println!("registering {id}");
        let meta = Meta { zone: zone.into() };
        registry
            .register(
                &service,
                ServiceInstance::new(&id, "127.0.0.1", 8000 + i as u16, meta),
            )
            .await?;
        instances.push(registry);
    }
    tokio::time::timeout(Duration::from_secs(10), cache.wait_for(|l| l.len() == 3)).await??;
    println!("discovered {} instances", cache.instances().len());
    for _ in 0..4 {
        if let Some(i) = cache.pick(Pick::RoundRobin) {
            println!("round robin -> {} ({})", i.id, i.metadata.zone);
        }
    }
    if let Some(i) = cache.pick(Pick::Random) {
        println!("random      -> {}", i.id);
    }

    // api-1 registers again with a new port: an update, not a duplicate.
    let meta = Meta { zone: "b".into() };
    instances[1]
        .register(
            &service,
            ServiceInstance::new("api-1", "127.0.0.1", 9001, meta),
        )
        .await?;
    // api-0 goes away (its session closes; the node goes with it).
    println!("closing api-0");
    instances.remove(0).close().await?;
    tokio::time::timeout(
        Duration::from_secs(10),
        cache.wait_for(|l| l.len() == 2 && l.iter().any(|i| i.port == 9001)),
    )
    .await??;
    let ids: Vec<String> = cache.instances().into_iter().map(|i| i.id).collect();
    println!("now: {ids:?}");

    for registry in instances {
        registry.close().await?;
    }
    tokio::time::timeout(Duration::from_secs(10), cache.wait_for(|l| l.is_empty())).await??;
    println!("all gone");
    drop(cache);
    printer.abort();
    Ok(())
}
