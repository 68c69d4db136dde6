//! Fair lock: three clients take turns on one lock; each holder bumps a counter znode
//! (read, then write: safe only because of the lock) and shows its fencing token, which
//! grows with every holder. A fourth client gives up after a bounded wait, leaving
//! nothing behind.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example lock` (`ZK_SERVERS` for other servers, default
//! `127.0.0.1:2181`).

use std::time::Duration;

use zk_client::{Client, CreateOptions};
use zk_recipes::Lock;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let admin = Client::connect(&servers).await?;
    let counter = "/examples-lock-counter";
    match admin
        .create(counter, "0", &CreateOptions::persistent())
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    admin.set_data(counter, "0", None).await?;

    let mut workers = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let client = Client::connect(&servers).await?;
        workers.push(tokio::spawn(async move {
            let lock = Lock::new(&client, "/examples/locks/counter")?;
            for _ in 0..3 {
                let guard = lock.acquire().await?;
                let (data, _) = client.get_data(counter).await?;
                let n: u64 = String::from_utf8_lossy(&data).parse().unwrap_or(0);
                client.set_data(counter, (n + 1).to_string(), None).await?;
                println!(
                    "{name:>5} holds the lock (token {}), counter {n} -> {}",
                    guard.fencing_token(),
                    n + 1
                );
                guard.release().await?;
            }
            client.close().await?;
            Ok::<_, zk_recipes::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }

    // A bounded wait that gives up leaves no node in the queue.
    let holder = Lock::new(&admin, "/examples/locks/counter")?
        .acquire()
        .await?;
    let impatient = Client::connect(&servers).await?;
    let waited = Lock::new(&impatient, "/examples/locks/counter")?
        .acquire_timeout(Duration::from_millis(300))
        .await;
    println!(
        "impatient client: {}",
        waited.err().map_or("got it?".into(), |e| e.to_string())
    );
    let (queue, _) = admin.get_children("/examples/locks/counter").await?;
    println!(
        "queue after the timeout: {} node(s) (the holder's)",
        queue.len()
    );
    holder.release().await?;

    let (data, _) = admin.get_data(counter).await?;
    println!("final counter: {}", String::from_utf8_lossy(&data));
    admin.delete(counter, None).await?;
    impatient.close().await?;
    admin.close().await?;
    Ok(())
}
