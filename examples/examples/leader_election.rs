//! Leader election: three candidates campaign; an observer prints every change of
//! leader. Each leader writes a status znode with a fenced (`guarded`) write, then hands
//! over by resigning. The last leader's session ends: `lost()` fires, and its later
//! guarded write is rejected with `Fenced`.
//!
//! Run: start a server with `cargo run --release -p zk-server`, then
//! `cargo run -p examples --example leader_election` (`ZK_SERVERS` for other servers,
//! default `127.0.0.1:2181`).

use std::time::Duration;

use futures::StreamExt;
use zk_client::{Client, CreateOptions, Op};
use zk_recipes::{Election, Error};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ELECTION: &str = "/examples/election/reporter";
const STATUS: &str = "/examples-election-status";

#[tokio::main]
async fn main() -> Result<()> {
    let servers = std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".into());
    let admin = Client::connect(&servers).await?;
    match admin.create(STATUS, "", &CreateOptions::persistent()).await {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }

    // The observer.
    let observer = Election::new(&admin, ELECTION, "observer")?;
    let watching = tokio::spawn(async move {
        let mut leaders = Box::pin(observer.observe());
        while let Some(Ok(leader)) = leaders.next().await {
            match leader {
                Some(l) => println!("observer: leader is {} (token {})", l.id, l.token),
                None => println!("observer: no leader"),
            }
        }
    });

    let mut candidates = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        let client = Client::connect(&servers).await?;
        let election = Election::new(&client, ELECTION, name)?;
        candidates.push((client, election));
    }
    let (tx, mut elected) = tokio::sync::mpsc::unbounded_channel();
    for (_, election) in &candidates {
        let (election, tx) = (election.clone(), tx.clone());
        tokio::spawn(async move {
            let _ = tx.send(election.campaign().await);
        });
    }

    // Two leaders work and resign in turn.
    for _ in 0..2 {
        let leadership = elected.recv().await.ok_or("no leader")??;
        let note = format!(
            "{} leads with token {}",
            leadership.id(),
            leadership.fencing_token()
        );
        leadership
            .guarded(vec![Op::set_data(STATUS, note.clone(), None)])
            .await?;
        println!("{note}; resigning");
        tokio::time::sleep(Duration::from_millis(200)).await;
        leadership.resign().await?;
    }

    // The third leader's session ends (as after a long pause or a crash).
    let leadership = elected.recv().await.ok_or("no leader")??;
    println!(
        "{} leads with token {}",
        leadership.id(),
        leadership.fencing_token()
    );
    let lost = leadership.lost();
    let (client, _) = candidates
        .iter()
        .find(|(_, e)| e.id() == leadership.id())
        .ok_or("unknown leader")?;
    client.close().await?;
    tokio::time::timeout(Duration::from_secs(10), lost).await?;
    println!("{}: lost() fired", leadership.id());
    match leadership
        .guarded(vec![Op::set_data(STATUS, "stale write", None)])
        .await
    {
        Err(Error::Fenced { reason, .. }) => {
            println!("{}: write rejected: {reason}", leadership.id())
        }
        other => println!("unexpected: {other:?}"),
    }
    let (status, _) = admin.get_data(STATUS).await?;
    println!("status stays: {:?}", String::from_utf8_lossy(&status));

    tokio::time::sleep(Duration::from_millis(200)).await;
    watching.abort();
    for (client, _) in &candidates {
        client.close().await?;
    }
    admin.delete(STATUS, None).await?;
    admin.close().await?;
    Ok(())
}
