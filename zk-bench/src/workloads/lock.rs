//! `lock`: lock handoff. All `clients` sessions contend for one fair lock at
//! `<root>/lock`, each with `inflight` contenders; a contender acquires, releases at
//! once and queues again. One op = one acquire -> release; its latency is the acquire
//! wait (from joining the queue to holding the lock), so the release is not counted.
//!
//! Natively the lock is `zk_recipes::Lock` (the recipe users get). Over the ZooKeeper
//! protocol (our server or Apache ZooKeeper) it is the classic recipe written here with
//! the `zookeeper-client` crate, the same on both servers: create an EPHEMERAL_SEQUENTIAL
//! `lock-` node, list the children, hold the lock when ours is the lowest, otherwise
//! watch the next lower node (`exists` watch) and look again when it goes; release by
//! deleting our node. A contender dropped at the end of the run leaves its node to its
//! session, which closes right after.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::{connect_all, drive_with, merge_all, Conn, OpError, Plan, Window};
use crate::report::Stats;

pub async fn run(admin: &Conn, plan: &Plan) -> Result<Stats, String> {
    let dir = format!("{}/lock", plan.root);
    admin
        .create(&dir, &Bytes::new())
        .await
        .map_err(|e| format!("setup: {e}"))?;
    let clients = connect_all(plan, plan.clients).await?;
    let window = Window::starting_now(plan);
    let runs = clients.iter().map(|client| {
        let dir = &dir;
        drive_with(window, plan.inflight, move |_| async move {
            handoff(client, dir).await.map(Some)
        })
    });
    let stats = join_all(runs).await;
    super::close_all(clients).await;
    Ok(merge_all(&stats))
}

/// One acquire -> release of the lock at `dir`; returns the acquire wait.
pub async fn handoff(conn: &Conn, dir: &str) -> Result<Duration, OpError> {
    match conn {
        Conn::Native(c) => {
            let other = |e: zk_recipes::Error| OpError::Other(e.to_string());
            let lock = zk_recipes::Lock::new(c, dir).map_err(other)?;
            let start = Instant::now();
            let guard = lock.acquire().await.map_err(other)?;
            let waited = start.elapsed();
            guard.release().await.map_err(other)?;
            Ok(waited)
        }
        Conn::Zk(c) => {
            let start = Instant::now();
            let node = zk_acquire(c, dir).await?;
            let waited = start.elapsed();
            c.delete(&node, None).await?;
            Ok(waited)
        }
    }
}

/// The sequence number of a `lock-NNNNNNNNNN` child (None for anything else).
fn sequence(name: &str) -> Option<i64> {
    name.strip_prefix("lock-")?.parse().ok()
}

/// The classic ZooKeeper lock recipe's acquire; returns our node's path.
async fn zk_acquire(c: &zk::Client, dir: &str) -> Result<String, OpError> {
    let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (_, seq) = c.create(&format!("{dir}/lock-"), b"", &options).await?;
    let me = seq.into_i64();
    let node = format!("{dir}/lock-{seq}");
    let waited = async {
        loop {
            let children = c.list_children(dir).await?;
            match predecessor(&children, me)? {
                None => return Ok(()),
                Some(prev) => {
                    let (stat, watcher) = c.check_and_watch_stat(&format!("{dir}/{prev}")).await?;
                    if stat.is_some() {
                        // Deleted (the handoff) or a session event: look again either way.
                        watcher.changed().await;
                    }
                }
            }
        }
    }
    .await;
    match waited {
        Ok(()) => Ok(node),
        Err(e) => {
            // Leave no node behind for others to wait on (best effort).
            let _ = c.delete(&node, None).await;
            Err(e)
        }
    }
}

/// The child just below sequence `me` (None: `me` is the lowest and holds the lock).
fn predecessor(children: &[String], me: i64) -> Result<Option<&str>, OpError> {
    if !children.iter().any(|c| sequence(c) == Some(me)) {
        return Err(OpError::Other(format!("lock node {me} vanished")));
    }
    Ok(children
        .iter()
        .filter_map(|c| sequence(c).map(|s| (s, c.as_str())))
        .filter(|(s, _)| *s < me)
        .max_by_key(|(s, _)| *s)
        .map(|(_, c)| c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predecessor_is_the_next_lower_sequence() {
        let kids: Vec<String> = [
            "lock-0000000010",
            "lock-0000000002",
            "other",
            "lock-0000000007",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(predecessor(&kids, 2).expect("present"), None);
        assert_eq!(
            predecessor(&kids, 10).expect("present"),
            Some("lock-0000000007")
        );
        assert_eq!(
            predecessor(&kids, 7).expect("present"),
            Some("lock-0000000002")
        );
        assert!(predecessor(&kids, 3).is_err());
    }
}
