//! Directed scenarios: the classic lock-safety trap (Kleppmann's paused holder), run on
//! a real ensemble. Holder A takes the lock and reads the counter, then "pauses" (its
//! network goes silent, as in a long GC) until its session expires; B takes the lock
//! with a newer token and increments; A wakes up and writes with its old token.
//! Fenced (`guarded`), A's write is refused; unfenced, the resource accepts it after
//! B's, and the fence check reports it. The unfenced run is the negative control that
//! proves the lock-safety checker can fail.

use std::path::PathBuf;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::Lock;

use crate::check::fence;
use crate::cluster::{Cluster, ClusterOptions};
use crate::error::ChaosError;
use crate::replicas;
use crate::workload::{self, increment_ops, read_counter, LockMode, LOCK};

/// What the paused-holder scenario saw.
#[derive(Debug, Clone)]
pub struct PausedHolder {
    /// The deposed holder's token.
    pub old_token: u64,
    /// The newer holder's token.
    pub new_token: u64,
    /// Whether the resource accepted the deposed holder's write.
    pub stale_write_accepted: bool,
    /// The fence checker's anomalies (empty: safe).
    pub anomalies: Vec<String>,
}

fn client_err(what: &str) -> impl FnOnce(zk_client::Error) -> ChaosError + '_ {
    move |source| ChaosError::Client {
        what: what.to_string(),
        source,
    }
}

fn recipe_err(what: &str) -> impl FnOnce(zk_recipes::Error) -> ChaosError + '_ {
    move |e| ChaosError::Client {
        what: format!("{what}: {e}"),
        source: zk_client::Error::Timeout,
    }
}

/// Runs the paused-holder scenario on a fresh 3-node ensemble of `server_bin`.
pub async fn paused_holder(
    server_bin: PathBuf,
    mode: LockMode,
) -> Result<PausedHolder, ChaosError> {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 3,
        server_bin,
        tick_ms: 500,
        snapshot_every: 1000,
        keep_dir: false,
    })
    .await?;
    let r = run(&cluster, mode).await;
    cluster.shutdown().await;
    r
}

async fn run(cluster: &Cluster, mode: LockMode) -> Result<PausedHolder, ChaosError> {
    let b = workload::connect(&cluster.client_proxies[1].connect_string())
        .await
        .ok_or_else(|| client_err("connecting B")(zk_client::Error::Timeout))?;
    workload::setup(&b, Duration::ZERO)
        .await
        .map_err(client_err("creating the tree"))?;
    // A reaches the ensemble only through server 1's proxy, with a short session.
    let a = Client::builder()
        .servers(&cluster.client_proxies[0].connect_string())
        .session_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(client_err("connecting A"))?;
    let guard_a = Lock::new(&a, LOCK)
        .map_err(recipe_err("lock A"))?
        .acquire_timeout(Duration::from_secs(10))
        .await
        .map_err(recipe_err("A acquiring"))?;
    let old_token = guard_a.fencing_token().value();
    let (value_a, version_a) = read_counter(&a)
        .await
        .ok_or_else(|| client_err("A reading the counter")(zk_client::Error::Timeout))?;

    // A pauses: nothing it sends or expects arrives, until its session is gone.
    cluster.client_proxies[0].pause();
    let guard_b = Lock::new(&b, LOCK)
        .map_err(recipe_err("lock B"))?
        .acquire_timeout(Duration::from_secs(30))
        .await
        .map_err(recipe_err("B acquiring"))?;
    let new_token = guard_b.fencing_token().value();
    let (value_b, version_b) = read_counter(&b)
        .await
        .ok_or_else(|| client_err("B reading the counter")(zk_client::Error::Timeout))?;
    guard_b
        .guarded(increment_ops(new_token, value_b + 1, Some(version_b)))
        .await
        .map_err(recipe_err("B incrementing"))?;
    let _ = guard_b.release().await;

    // A wakes up and writes what it computed before the pause.
    cluster.client_proxies[0].resume();
    let stale_write_accepted = match mode {
        LockMode::Fenced => guard_a
            .guarded(increment_ops(old_token, value_a + 1, Some(version_a)))
            .await
            .is_ok(),
        LockMode::Unfenced => {
            // The resource trusts the lock: a plain write on a healthy session.
            let resource = workload::connect(&cluster.client_proxies[2].connect_string())
                .await
                .ok_or_else(|| client_err("connecting the resource")(zk_client::Error::Timeout))?;
            let ok = resource
                .multi(increment_ops(old_token, value_a + 1, None))
                .await
                .is_ok();
            let _ = resource.close().await;
            ok
        }
    };
    drop(guard_a);
    let _ = tokio::time::timeout(Duration::from_secs(2), a.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), b.close()).await;
    let state = replicas::read(&cluster.nodes[1].client_addr, &[], &[])
        .await
        .map_err(client_err("reading the fence log"))?;
    Ok(PausedHolder {
        old_token,
        new_token,
        stale_write_accepted,
        anomalies: fence::check(&state.fence, state.counter),
    })
}

/// What the follower-reads scenario saw.
#[derive(Debug, Clone)]
pub struct FollowerReads {
    /// Register operations recorded.
    pub ops: u64,
    /// The linearizability anomalies found.
    pub anomalies: Vec<crate::check::Anomaly>,
}

/// Reads on a lagging follower: replication from the leader to one follower is slowed
/// (a delay on their peer link) while a client on the leader writes a register and a
/// client on the follower reads it right after each write is acknowledged. With
/// `synced` the reads are `sync` + `get_data` (linearizable: no anomaly); without, they
/// are plain local reads, which ZooKeeper only promises to be sequentially consistent:
/// the checker must report the stale reads (the negative control for the
/// linearizability checker on a live ensemble).
pub async fn follower_reads(
    server_bin: PathBuf,
    synced: bool,
    rounds: u32,
) -> Result<FollowerReads, ChaosError> {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 3,
        server_bin,
        tick_ms: 500,
        snapshot_every: 1000,
        keep_dir: false,
    })
    .await?;
    let r = follower_reads_on(&cluster, synced, rounds).await;
    cluster.shutdown().await;
    r
}

async fn follower_reads_on(
    cluster: &Cluster,
    synced: bool,
    rounds: u32,
) -> Result<FollowerReads, ChaosError> {
    use crate::history::{History, Op, Outcome, Ret};
    let leader = cluster
        .leader()
        .await
        .ok_or_else(|| client_err("finding the leader")(zk_client::Error::Timeout))?;
    let follower = (leader + 1) % cluster.len();
    let writer = workload::connect(&cluster.client_proxies[leader].connect_string())
        .await
        .ok_or_else(|| client_err("connecting the writer")(zk_client::Error::Timeout))?;
    let reader = workload::connect(&cluster.client_proxies[follower].connect_string())
        .await
        .ok_or_else(|| client_err("connecting the reader")(zk_client::Error::Timeout))?;
    workload::setup(&writer, Duration::ZERO)
        .await
        .map_err(client_err("creating the tree"))?;
    let path = workload::reg_path(0);
    for key in [(leader, follower), (follower, leader)] {
        if let Some(p) = cluster.peer_links.get(&key) {
            p.set_delay(Duration::from_millis(300));
        }
    }
    let h = History::new();
    let mut version = 0;
    for n in 1..=u64::from(rounds) {
        let p = h.invoke(
            1,
            Op::RegCas {
                key: 0,
                value: n,
                expect: version,
            },
        );
        match tokio::time::timeout(
            Duration::from_secs(10),
            writer.set_data(&path, n.to_string(), Some(version)),
        )
        .await
        {
            Ok(Ok(stat)) => {
                version = stat.version;
                h.complete(p, Outcome::Ok(Ret::Version(stat.version)));
            }
            _ => {
                h.complete(p, Outcome::Unknown);
                break;
            }
        }
        let p = h.invoke(2, Op::RegRead { key: 0 });
        let read = async {
            if synced {
                reader.sync(&path).await?;
            }
            reader.get_data(&path).await
        };
        let outcome = match tokio::time::timeout(Duration::from_secs(10), read).await {
            Ok(Ok((data, stat))) => {
                match std::str::from_utf8(&data).ok().and_then(|t| t.parse().ok()) {
                    Some(value) => Outcome::Ok(Ret::Value {
                        value,
                        version: stat.version,
                    }),
                    None => Outcome::Unknown,
                }
            }
            _ => Outcome::Unknown,
        };
        h.complete(p, outcome);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), writer.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader.close()).await;
    let entries = h.entries();
    let report = crate::check::linearizability(&entries, crate::check::DEFAULT_BUDGET);
    Ok(FollowerReads {
        ops: report.ops_checked,
        anomalies: report.anomalies,
    })
}
