//! Barriers: workers wait at a barrier until a coordinator removes it; then five
//! workers meet at a double barrier, start together, and leave together.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example barrier` (`ZK_SERVERS` overrides the default
//! `127.0.0.1:2181`).

use std::time::Duration;

use zk_client::Client;
use zk_recipes::{Barrier, DoubleBarrier};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let base = format!("/demo/barriers-{}", std::process::id());

    // 1. A simple barrier: set, three workers wait, remove releases them all.
    let coordinator = Barrier::new(Client::connect(&servers).await?, format!("{base}/go"));
    coordinator.set().await?;
    println!("barrier set");
    let mut workers = Vec::new();
    for i in 0..3 {
        let barrier = Barrier::new(Client::connect(&servers).await?, format!("{base}/go"));
        workers.push(tokio::spawn(async move {
            println!("  worker {i} waiting");
            let r = barrier.wait_timeout(Duration::from_secs(10)).await;
            println!("  worker {i} released: {r:?}");
            r
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("removing the barrier");
    coordinator.remove().await?;
    for w in workers {
        w.await??;
    }

    // 2. A double barrier of five: arrive at different times, start together.
    let mut members = Vec::new();
    for i in 0..5u64 {
        let barrier =
            DoubleBarrier::new(Client::connect(&servers).await?, format!("{base}/dbl"), 5)
                .with_id(format!("member-{i}"));
        members.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            println!("  member {i} arrives");
            barrier.enter_timeout(Duration::from_secs(10)).await?;
            println!("  member {i} starts");
            tokio::time::sleep(Duration::from_millis(100 * (5 - i))).await;
            println!("  member {i} done, leaving");
            barrier.leave_timeout(Duration::from_secs(10)).await?;
            println!("  member {i} left (everyone is done)");
            Ok::<(), zk_recipes::Error>(())
        }));
    }
    for m in members {
        m.await??;
    }
    let cleanup = Client::connect(&servers).await?;
    let _ = cleanup.delete(&base, None).await;
    Ok(())
}
