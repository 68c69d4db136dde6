//! `zk-sim`: runs many seeds of the deterministic simulation and prints one JSON line per
//! seed (its counts, anomalies and history fingerprint), then a summary line; on stderr,
//! `seed N fingerprint H` per seed: the same seed gives the same fingerprint (replay).
//!
//! Each seed of a multi-seed run runs in a fresh child process (`--jobs` at a time), so
//! that it behaves exactly as its lone replay (`--seeds 1 --start N`): some state of a
//! process outlives a simulation (tokio's task ids come from one counter per process,
//! and a crashed host's tasks are dropped in an order that follows them).
//!
//! `cargo run --release -p zk-sim -- --seeds 1000 --start 0` (see docs/reliability.md).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use zk_chaos::workload::LockMode;
use zk_server::config::SyncPolicy;
use zk_sim::nemesis::{Fault, NODES};
use zk_sim::{run_seed, SimOptions};

/// Deterministic simulation of a 3-node ensemble under faults.
#[derive(Debug, Parser)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Simulated seconds of workload per seed.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Simulated seconds the healed cluster settles before the replicas are read.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// Negative control: the nodes acknowledge writes without fsync.
    #[arg(long)]
    no_fsync: bool,
    /// Negative control: the lock clients do not fence their writes.
    #[arg(long)]
    unfenced: bool,
    /// Negative control: the nodes answer `sync` without the leader's read index
    /// (reads after a sync can be stale).
    #[arg(long)]
    stale_sync: bool,
    /// Negative control: the nodes' `setData` ignores the expected version.
    #[arg(long)]
    lost_update: bool,
    /// The largest message latency outside latency faults, ms.
    #[arg(long, default_value_t = 5)]
    max_latency_ms: u64,
    /// Make each seed's first fault a crash of every node.
    #[arg(long)]
    crash_all_first: bool,
    /// Make each seed's first fault cutting node N (0-based) off from its peers (its
    /// clients still reach it).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..NODES.len() as u64))]
    cut_peers_first: Option<u64>,
    /// Log filter for the nodes (tracing env-filter syntax), e.g. `info`.
    #[arg(long)]
    log: Option<String>,
    /// Child processes running seeds at a time (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run every seed in this process, one after the other, instead of one child
    /// process per seed (faster to start, but a seed that crashes a node may then
    /// behave differently from its lone replay).
    #[arg(long)]
    in_process: bool,
    /// Internal: the child's one seed (overrides --seeds / --start).
    #[arg(long, hide = true)]
    only_seed: Option<u64>,
}

/// Totals over the seeds of a run.
#[derive(Default)]
struct Totals {
    ops: u64,
    acked: u64,
    faults: u64,
    inconclusive: u64,
    failed: u64,
    anomalies: u64,
}

impl Totals {
    /// Adds one seed's JSON line (a report, or `{"seed":N,"error":...}`).
    fn add(&mut self, line: &serde_json::Value) {
        let n = |k: &str| line.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        self.ops += n("ops");
        self.acked += n("acked_writes");
        self.faults += n("faults");
        self.inconclusive += n("inconclusive");
        let anomalies = line
            .get("anomalies")
            .and_then(serde_json::Value::as_array)
            .map_or(0, Vec::len) as u64;
        if anomalies > 0 || line.get("error").is_some() {
            self.failed += 1;
        }
        self.anomalies += anomalies;
    }
}

/// Log time stamps in simulated time (`-` outside a simulation step).
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>10.3}s", t.as_secs_f64()),
            None => write!(w, "{:>11}", "-"),
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Some(filter) = &args.log {
        // Stamped with simulated time, so that two runs of a seed can be diffed line by
        // line (the first differing line is where they diverge).
        tracing_subscriber::fmt()
            .with_env_filter(filter.as_str())
            .with_timer(SimTime)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .init();
    }
    let started = Instant::now();
    let seeds: Vec<u64> = match args.only_seed {
        Some(seed) => vec![seed],
        None => (args.start..args.start + args.seeds).collect(),
    };
    let totals = if args.in_process || seeds.len() <= 1 {
        let mut totals = Totals::default();
        for &seed in &seeds {
            let line = run_one(&args, seed);
            totals.add(&line);
            println!("{line}");
            if let Some(f) = line.get("fingerprint").and_then(serde_json::Value::as_str) {
                eprintln!("seed {seed} fingerprint {f}");
            }
        }
        totals
    } else {
        run_children(&args, &seeds)
    };
    println!(
        "{}",
        serde_json::json!({
            "seeds": args.seeds,
            "start": args.start,
            "sim_secs_per_seed": args.secs,
            "ops_checked": totals.ops,
            "acked_writes_checked": totals.acked,
            "faults": totals.faults,
            "inconclusive_keys": totals.inconclusive,
            "seeds_with_anomalies": totals.failed,
            "anomalies": totals.anomalies,
            "wall_secs": started.elapsed().as_secs_f64(),
        })
    );
    if totals.failed > 0 {
        std::process::exit(1);
    }
}

/// Runs `seed` in this process; its JSON line (a report, or the error).
fn run_one(args: &Args, seed: u64) -> serde_json::Value {
    let mut o = SimOptions::new(seed);
    o.duration = Duration::from_secs(args.secs);
    o.settle = Duration::from_secs(args.settle_secs);
    if args.no_fsync {
        o.sync = SyncPolicy::Never;
    }
    if args.crash_all_first {
        o.first_fault = Some(Fault::Crash((0..NODES.len()).collect()));
    }
    if let Some(n) = args.cut_peers_first {
        o.first_fault = Some(Fault::PartitionPeers(n as usize));
    }
    if args.unfenced {
        o.lock = LockMode::Unfenced;
    }
    o.max_latency = Duration::from_millis(args.max_latency_ms);
    if args.lost_update {
        o.bugs.push(zk_server::sim::Bug::SetDataIgnoresVersion);
    }
    if args.stale_sync {
        o.bugs.push(zk_server::sim::Bug::SyncWithoutReadIndex);
    }
    match run_seed(&o).map(|r| serde_json::to_value(&r)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => serde_json::json!({ "seed": seed, "error": e.to_string() }),
        Err(e) => serde_json::json!({ "seed": seed, "error": e }),
    }
}

/// Runs every seed in a child process of its own (this binary with `--only-seed`),
/// `--jobs` at a time, and prints each child's seed line as it finishes.
fn run_children(args: &Args, seeds: &[u64]) -> Totals {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("zk-sim: cannot find its own binary to run seeds in: {e}");
            std::process::exit(2);
        }
    };
    let passed: Vec<String> = std::env::args().skip(1).collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let next = AtomicU64::new(0);
    let totals = Mutex::new(Totals::default());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(seeds.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(&seed) = seeds.get(i) else { return };
                let out = Command::new(&exe)
                    .args(&passed)
                    .args(["--only-seed", &seed.to_string()])
                    .stderr(std::process::Stdio::inherit())
                    .output();
                // The child prints its seed's line, then its one-seed summary.
                let line = match &out {
                    Ok(o) => String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .filter(|v| v.get("seed").is_some()),
                    Err(_) => None,
                };
                let line = line.unwrap_or_else(|| {
                    let why = match &out {
                        Ok(o) => format!("child exited with {} and no seed line", o.status),
                        Err(e) => format!("cannot start the child: {e}"),
                    };
                    serde_json::json!({ "seed": seed, "error": why })
                });
                let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
                t.add(&line);
                println!("{line}");
            });
        }
    });
    totals.into_inner().unwrap_or_else(|e| e.into_inner())
}
