//! `zk-sim`: runs many seeds of the deterministic simulation and prints one JSON line per
//! seed (its counts, anomalies and history fingerprint), then a summary line; on stderr,
//! `seed N fingerprint H` per seed: the same seed gives the same fingerprint (replay).
//!
//! `cargo run --release -p zk-sim -- --seeds 1000 --start 0` (see docs/reliability.md).

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
    let (mut ops, mut acked, mut faults, mut failed, mut anomalies) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut inconclusive = 0u64;
    for seed in args.start..args.start + args.seeds {
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
        match run_seed(&o) {
            Ok(r) => {
                ops += r.ops;
                acked += r.acked_writes;
                faults += r.faults;
                inconclusive += r.inconclusive;
                if !r.anomalies.is_empty() {
                    failed += 1;
                    anomalies += r.anomalies.len() as u64;
                }
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
                eprintln!("seed {seed} fingerprint {}", r.fingerprint);
            }
            Err(e) => {
                failed += 1;
                println!(
                    "{{\"seed\":{seed},\"error\":{}}}",
                    serde_json::Value::from(e)
                );
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "seeds": args.seeds,
            "start": args.start,
            "sim_secs_per_seed": args.secs,
            "ops_checked": ops,
            "acked_writes_checked": acked,
            "faults": faults,
            "inconclusive_keys": inconclusive,
            "seeds_with_anomalies": failed,
            "anomalies": anomalies,
            "wall_secs": started.elapsed().as_secs_f64(),
        })
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
