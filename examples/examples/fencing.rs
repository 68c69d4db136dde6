//! Fencing a resource outside the tree: a storage service guarded by a
//! `FencingValidator` rejects a deposed leader that wakes up after a pause.
//!
//! Leader A is elected and writes to the store with its token; then A "pauses" (here:
//! its session is ended, as it would expire during a long GC pause). B is elected and
//! writes with its larger token. A wakes up, still believing it leads, and writes with
//! its old token: the store rejects it. Without the token check, A's stale write would
//! have overwritten B's.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example fencing` (`ZK_SERVERS` for other servers, default
//! `127.0.0.1:2181`).

use std::sync::Arc;

use tokio::sync::Mutex;
use zk_client::Client;
use zk_recipes::{Election, FencingToken, FencingValidator};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The protected resource: a value plus the validator that guards its writes.
struct Store {
    validator: FencingValidator,
    value: Mutex<String>,
}

impl Store {
    async fn write(&self, token: FencingToken, value: &str) -> zk_recipes::Result<()> {
        let _admitted = self.validator.admit(token).await?;
        *self.value.lock().await = value.to_string();
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let store = Arc::new(Store {
        validator: FencingValidator::new("store"),
        value: Mutex::new(String::new()),
    });
    let a = Client::connect(&servers).await?;
    let b = Client::connect(&servers).await?;

    let leader_a = Election::new(&a, "/examples/election/fencing", "A")?
        .campaign()
        .await?;
    let token_a = leader_a.fencing_token();
    store.write(token_a, "written by A").await?;
    println!("A leads with token {token_a} and writes");

    let election_b = Election::new(&b, "/examples/election/fencing", "B")?;
    let b_campaign = tokio::spawn(async move { election_b.campaign().await });

    println!("A pauses... (its session ends meanwhile)");
    a.close().await?;
    let leader_b = b_campaign.await??;
    let token_b = leader_b.fencing_token();
    store.write(token_b, "written by B").await?;
    println!("B leads with token {token_b} and writes");

    println!("A wakes up and writes with its old token {token_a}");
    match store.write(token_a, "stale write by A").await {
        Ok(()) => println!("the store accepted it (this must not happen)"),
        Err(e) => println!("the store rejected it: {e}"),
    }
    println!("store value: {:?}", store.value.lock().await);
    leader_b.resign().await?;
    b.close().await?;
    Ok(())
}
