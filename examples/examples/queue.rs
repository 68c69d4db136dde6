//! FIFO queue: two producers offer numbered jobs, three consumers take them; every job
//! is taken exactly once, in queue order.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example queue` (`ZK_SERVERS` overrides the default
//! `127.0.0.1:2181`).

use std::time::Duration;

use zk_client::Client;
use zk_recipes::{Error, Queue};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const JOBS: usize = 10;

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let path = format!("/demo/queue-{}", std::process::id());

    let mut consumers = Vec::new();
    for c in 0..3 {
        let queue = Queue::new(Client::connect(&servers).await?, &path);
        consumers.push(tokio::spawn(async move {
            let mut taken = 0;
            // Stop once the queue has stayed empty for a second.
            loop {
                match queue.take_timeout(Duration::from_secs(1)).await {
                    Ok(job) => {
                        println!("  consumer {c} took {}", String::from_utf8_lossy(&job));
                        taken += 1;
                    }
                    Err(Error::Timeout { .. }) => break,
                    Err(e) => return Err(e),
                }
            }
            Ok::<usize, Error>(taken)
        }));
    }
    let mut producers = Vec::new();
    for p in 0..2 {
        let queue = Queue::new(Client::connect(&servers).await?, &path);
        producers.push(tokio::spawn(async move {
            for i in 0..JOBS {
                queue.offer(format!("job {p}.{i}")).await?;
            }
            println!("producer {p} offered {JOBS} jobs");
            Ok::<(), Error>(())
        }));
    }
    for p in producers {
        p.await??;
    }
    let mut total = 0;
    for c in consumers {
        total += c.await??;
    }
    println!("{total} jobs taken, {} offered", 2 * JOBS);
    let cleanup = Client::connect(&servers).await?;
    let _ = cleanup.delete(&path, None).await;
    Ok(())
}
