//! Quickstart: connect, create / get / set / delete, list children, an atomic `multi`,
//! and a one-shot watch.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example quickstart` (set `ZK_SERVER` for another address).

use zk_client::{Client, CreateOptions, Op};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let server = std::env::var("ZK_SERVER").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let client = Client::connect(&server).await?;
    println!("connected, session {:#x}", client.session_id());

    let (path, _) = client
        .create("/quickstart", "hello", &CreateOptions::persistent())
        .await?;
    let (data, stat) = client.get_data(&path).await?;
    println!(
        "{path} = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );
    let stat = client.set_data(&path, "world", Some(stat.version)).await?;
    println!("set {path}, now version {}", stat.version);

    // Children: an ephemeral sequential node goes away with the session.
    let seq = CreateOptions::ephemeral().sequential(true);
    let (child, _) = client.create("/quickstart/worker-", "", &seq).await?;
    let (children, _) = client.get_children(&path).await?;
    println!("created {child}; children of {path}: {children:?}");

    // A watch is a future: arm it, make a change, await the event.
    let (_, _, watcher) = client.get_data_and_watch(&path).await?;
    let stat = client.set_data(&path, "again", None).await?;
    let event = watcher.await;
    println!("event: {:?} on {}", event.event_type, event.path);

    // multi: all or nothing (here: only if nobody changed the node meanwhile).
    let results = client
        .multi(vec![
            Op::check(path.as_str(), Some(stat.version)),
            Op::create("/quickstart/a", "1", CreateOptions::persistent()),
            Op::set_data(path.as_str(), "done", None),
        ])
        .await?;
    println!("multi applied {} ops", results.len());

    // Clean up, children first.
    client.delete("/quickstart/a", None).await?;
    client.delete(&child, None).await?;
    client.delete(&path, None).await?;
    client.close().await?;
    Ok(())
}
