//! The deterministic simulation in CI: a batch of seeds under faults must pass every
//! check; a crash of every node must lose no acknowledged write; and the negative
//! control — nodes that acknowledge writes before they are fsynced — must be caught.
//!
//! Sizes: `ZK_SIM_SEEDS` seeds (default 24) of `ZK_SIM_SECS` simulated seconds (default
//! 15) each; the long run is the `zk-sim` binary (docs/reliability.md).

use std::time::Duration;

use zk_server::config::SyncPolicy;
use zk_sim::{run_seed, SeedReport, SimOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options(seed: u64) -> SimOptions {
    let mut o = SimOptions::new(seed);
    o.duration = Duration::from_secs(env_u64("ZK_SIM_SECS", 15));
    o
}

fn run(o: &SimOptions) -> SeedReport {
    match run_seed(o) {
        Ok(r) => r,
        Err(e) => panic!("seed {}: {e}", o.seed),
    }
}

/// Runs half `half` (0 or 1) of the batch: two tests, so both CPUs work.
fn batch(half: u64) {
    let seeds = env_u64("ZK_SIM_SEEDS", 24);
    let start = env_u64("ZK_SIM_START", 1000);
    let mut ops = 0;
    for seed in (start..start + seeds).filter(|s| (s - start) % 2 == half) {
        let r = run(&options(seed));
        assert!(
            r.anomalies.is_empty(),
            "seed {seed} (replay: cargo run -p zk-sim -- --seeds 1 --start {seed} --secs {}): {:#?}",
            options(seed).duration.as_secs(),
            r.anomalies
        );
        assert!(
            r.acked_writes > 0,
            "seed {seed} acknowledged no write: {r:?}"
        );
        ops += r.ops;
    }
    assert!(ops > 0 || seeds < 2);
}

#[test]
fn seeds_under_faults_pass_every_check_even() {
    batch(0);
}

#[test]
fn seeds_under_faults_pass_every_check_odd() {
    batch(1);
}

/// A power loss of the whole ensemble: what was acknowledged was fsynced on a quorum,
/// so it survives, and every node comes back and serves.
#[test]
fn crash_of_every_node_loses_no_acknowledged_write() {
    let mut o = options(7);
    o.crash_all_first = true;
    let r = run(&o);
    assert!(r.anomalies.is_empty(), "{:#?}", r.anomalies);
    assert!(r.acked_writes > 0, "{r:?}");
}

/// Negative control: nodes that acknowledge writes before fsync (`--sync never`) lose
/// them when every node crashes; the checkers must say so within three seeds.
#[test]
fn negative_control_ack_before_fsync_is_caught() {
    for seed in 7..10 {
        let mut o = options(seed);
        o.crash_all_first = true;
        o.sync = SyncPolicy::Never;
        let r = run(&o);
        if !r.anomalies.is_empty() {
            return;
        }
    }
    panic!("acknowledging before fsync went unnoticed in 3 seeds");
}

/// Replay: the same seed must give the same history. Not yet true (see
/// docs/reliability.md, "Deterministic simulation"): tokio's `select!` and scheduler
/// randomness cannot be seeded without `--cfg tokio_unstable`, openraft draws election
/// timeouts from `rand::thread_rng()`, and `HashMap` iteration order is random per
/// process. Kept, ignored, so that it can be switched on when those are fixed.
#[test]
#[ignore = "the simulation does not replay exactly yet (tokio/openraft/HashMap randomness)"]
fn same_seed_gives_the_same_history() {
    let mut o = options(3);
    o.duration = Duration::from_secs(8);
    let a = run(&o);
    let b = run(&o);
    assert_eq!(a.digest, b.digest, "{a:?}\n{b:?}");
}
