//! Typed config watch: a writer publishes a few versions of a JSON config, with one
//! compare-and-set that loses and one value that does not decode; a watcher prints
//! every update and keeps the last good value through the bad one.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example config_watch` (`ZK_SERVERS` overrides the default
//! `127.0.0.1:2181`). For a plain-client version see the `watch_config` example.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use zk_client::Client;
use zk_recipes::{ConfigWatch, ConfigWriter};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Limits {
    max_connections: u32,
    log_level: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let path = format!("/demo/config-{}", std::process::id());
    let writer_client = Client::connect(&servers).await?;
    let writer = ConfigWriter::<Limits>::new(writer_client.clone(), &path);
    let stat = writer
        .publish(&Limits {
            max_connections: 10,
            log_level: "info".into(),
        })
        .await?;
    println!("published v{}", stat.version);

    // The watcher renews its session if it expires (a builder source).
    let watch = ConfigWatch::<Limits>::new(Client::builder().servers(&servers), &path).await?;
    let mut updates = watch.updates();
    let printer = tokio::spawn(async move {
        while let Some(update) = updates.next().await {
            match update {
                Ok(Some(v)) => println!("  watcher: v{} {:?}", v.stat.version, v.value),
                Ok(None) => println!("  watcher: config deleted"),
                Err(e) => println!("  watcher: {e}"),
            }
        }
    });

    let limits = |n, level: &str| Limits {
        max_connections: n,
        log_level: level.into(),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.publish(&limits(20, "info")).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A compare-and-set against a stale version loses.
    match writer
        .publish_if_version(&limits(99, "trace"), Some(0))
        .await
    {
        Ok(_) => println!("stale compare-and-set won?"),
        Err(e) => println!("stale compare-and-set rejected: {e}"),
    }
    // Someone writes garbage: reported, and the last good value stays.
    writer_client.set_data(&path, "{oops", None).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Some(v) = watch.current() {
        println!(
            "after the bad value, current is still v{} {:?}",
            v.stat.version, v.value
        );
    }
    let stat = writer_client
        .exists(&path)
        .await?
        .map(|s| s.version)
        .unwrap_or(0);
    writer
        .publish_if_version(&limits(30, "debug"), Some(stat))
        .await?;
    tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|v| v.is_some_and(|v| v.value.max_connections == 30)),
    )
    .await??;
    println!("final: {:?}", watch.current().map(|v| v.value));

    writer_client.delete(&path, None).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    printer.abort();
    Ok(())
}
