//! `zk-bench lifecycle`: one server's life, measured from outside (separate processes,
//! fsync on, loopback). In order, one JSON line each (`"measure"` says which):
//!
//! 1. `fsync`: the disk probe in the server's data directory.
//! 2. `start` from `empty`: spawn -> first served read of `/` by a new session.
//! 3. `build`: `--znodes` creates of `--value-size` bytes, pipelined; then `rss` (VmRSS).
//! 4. `start` from the data just written (zk-server: its log, no snapshot yet; Apache:
//!    its snapshots + log): spawn -> first served read of the tree's last node.
//! 5. `snapshot`: zk-server (restarted with `--snapshot-every 1`): one write -> the
//!    snapshot covering it is on disk (`zk_raft_snapshot_index` in /metrics); Apache:
//!    `zk_max_snapshottime` of `mntr` (the snapshot it takes of the loaded tree at startup).
//! 6. `start` from `snapshot` (a snapshot covering the tree), then `rss` once recovered.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use super::server::{first_served, shown, Server, Setup, System};
use super::{fsync, tree};
use crate::workloads::Conn;

/// zk-server's `--snapshot-every` while no snapshot should happen.
const NO_SNAPSHOTS: u64 = 1 << 40;

/// Flags of `zk-bench lifecycle`.
#[derive(Debug, Clone, clap::Args)]
pub struct LifecycleArgs {
    /// The server to measure.
    #[arg(long, value_enum, default_value_t = System::ZkServer)]
    pub system: System,
    /// Nodes in the tree (1,000,000 for the figure; fewer for a quick run).
    #[arg(long, default_value_t = 1_000_000)]
    pub znodes: usize,
    /// Bytes per node.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// The zk-server binary [default: next to this one].
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// `--system apache-zk`: the directory with start.sh / stop.sh.
    #[arg(long, default_value = "bench/apache-zk")]
    pub apache_scripts: PathBuf,
    /// State of this run (removed first, and at the end unless --keep).
    #[arg(long, default_value = "/tmp/zk-bench-lifecycle")]
    pub dir: PathBuf,
    /// Client port (zk-server's admin HTTP: port + 200).
    #[arg(long, default_value_t = 26181)]
    pub port: u16,
    /// Bound on each wait (start, build, snapshot), seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Keep --dir at the end.
    #[arg(long)]
    pub keep: bool,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

pub async fn run(args: LifecycleArgs) -> Result<(), String> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("zk-server"),
    };
    let setup = Setup {
        system: args.system,
        bin,
        scripts: args.apache_scripts.clone(),
        dir: args.dir.clone(),
        port: args.port,
    };
    setup.prepare()?;
    let result = measure(&args, &setup).await;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    result
}

async fn measure(args: &LifecycleArgs, setup: &Setup) -> Result<(), String> {
    let system = args.system.name();
    let target = args.system.target();
    let addr = setup.client_addr();
    let limit = Duration::from_secs(args.timeout);
    let n = args.znodes;
    let emit = |v: serde_json::Value| println!("{v}");

    let disk = setup.disk_dir();
    let probe = fsync::probe(&disk, 200)?;
    let mut line: serde_json::Value =
        serde_json::from_str(&fsync::line(&disk, &probe)).map_err(|e| e.to_string())?;
    line["system"] = json!(system);
    emit(line);

    // 2. Cold start, empty.
    let t0 = Instant::now();
    let server = setup.start(NO_SNAPSHOTS)?;
    let conn = first_served(target, &addr, "/", limit).await?;
    emit(
        json!({"measure": "start", "system": system, "znodes": 0, "from": "empty", "ms": ms(t0.elapsed())}),
    );
    conn.close().await;

    // 3. The tree, and the RSS that holds it.
    let t0 = Instant::now();
    tokio::time::timeout(limit, tree::build(target, &addr, n, args.value_size))
        .await
        .map_err(|_| format!("building {n} nodes took over {limit:?}"))??;
    let took = t0.elapsed().as_secs_f64();
    emit(
        json!({"measure": "build", "system": system, "znodes": n, "value_size": args.value_size,
        "s": (took * 1000.0).round() / 1000.0, "creates_per_sec": (n as f64 / took).round()}),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    emit(
        json!({"measure": "rss", "system": system, "znodes": n, "when": "built", "rss_kib": server.rss_kib()?}),
    );
    server.stop()?;

    // 4. Restart from the data written so far.
    let t0 = Instant::now();
    let server = setup.start(1)?;
    let conn = first_served(target, &addr, tree::LAST, limit).await?;
    let from = match args.system {
        System::ZkServer => "log",
        System::ApacheZk => "snapshot+log",
    };
    emit(
        json!({"measure": "start", "system": system, "znodes": n, "from": from, "ms": ms(t0.elapsed())}),
    );

    // 5. Snapshot of the whole tree.
    let (snap_ms, how) = match args.system {
        System::ZkServer => (
            ours_snapshot(&server, &conn, limit).await?,
            "one write -> /metrics zk_raft_snapshot_index covers it (--snapshot-every 1)",
        ),
        System::ApacheZk => (
            apache_snapshot(&server, limit).await?,
            "mntr zk_max_snapshottime (snapshot of the loaded tree at startup)",
        ),
    };
    emit(json!({"measure": "snapshot", "system": system, "znodes": n, "ms": snap_ms, "how": how}));
    conn.close().await;
    server.stop()?;

    // 6. Restart from a snapshot covering the tree.
    let t0 = Instant::now();
    let server = setup.start(NO_SNAPSHOTS)?;
    let conn = first_served(target, &addr, tree::LAST, limit).await?;
    emit(
        json!({"measure": "start", "system": system, "znodes": n, "from": "snapshot", "ms": ms(t0.elapsed())}),
    );
    conn.close().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    emit(
        json!({"measure": "rss", "system": system, "znodes": n, "when": "recovered", "rss_kib": server.rss_kib()?}),
    );
    server.stop()?;
    eprintln!("# lifecycle of {system} done ({})", shown(&setup.dir));
    Ok(())
}

/// Polls `f` every 5 ms until it yields `Some`, at most `limit`.
async fn poll<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: not within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// zk-server restarted with `--snapshot-every 1`: waits out the snapshot its restart
/// triggers, then times one write -> the snapshot that covers it.
async fn ours_snapshot(server: &Server, conn: &Conn, limit: Duration) -> Result<f64, String> {
    let covers = |index: f64| async move {
        Ok((server.metric("zk_raft_snapshot_index").await? >= index).then_some(()))
    };
    let applied = server.metric("zk_raft_applied_index").await?;
    poll(limit, "first snapshot after restart", || covers(applied)).await?;
    let t0 = Instant::now();
    conn.set(tree::LAST, &Bytes::from_static(b"snapshot"))
        .await
        .map_err(|e| format!("set {}: {e}", tree::LAST))?;
    let index = server.metric("zk_raft_last_log_index").await?;
    poll(limit, "snapshot covering a write", || covers(index)).await?;
    Ok(ms(t0.elapsed()))
}

/// Apache ZooKeeper's own timing of the snapshot it took while starting.
async fn apache_snapshot(server: &Server, limit: Duration) -> Result<f64, String> {
    poll(limit, "Apache's startup snapshot", || async {
        Ok((server.mntr("zk_cnt_snapshottime").await? >= 1.0).then_some(()))
    })
    .await?;
    server.mntr("zk_max_snapshottime").await
}
