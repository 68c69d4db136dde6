//! The deterministic simulation in CI: many short seeds under faults must pass every
//! check; a seed must replay exactly (same fingerprint twice); a crash of every node must
//! lose no acknowledged write; and the negative controls — nodes that acknowledge writes
//! before they are fsynced, nodes with an injected lost-update bug, runs that draw from
//! the OS instead of the seed — must be caught.
//!
//! Sizes: `ZK_SIM_SEEDS` seeds (default 200) of `ZK_SIM_SECS` simulated seconds of
//! workload (default 8) each, from `ZK_SIM_START` (default 1000), spread over the
//! machine's cores; the long run is the `zk-sim` binary (docs/reliability.md).

use std::time::Duration;

use zk_server::config::SyncPolicy;
use zk_server::sim::Bug;
use zk_sim::nemesis::{Fault, NODES};
use zk_sim::{run_seed, SeedReport, SimOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options(seed: u64) -> SimOptions {
    let mut o = SimOptions::new(seed);
    o.duration = Duration::from_secs(env_u64("ZK_SIM_SECS", 8));
    o
}

fn run(o: &SimOptions) -> SeedReport {
    match run_seed(o) {
        Ok(r) => r,
        Err(e) => panic!("seed {}: {e}", o.seed),
    }
}

/// The CI batch, through the `zk-sim` binary exactly as a long run: every seed in a
/// child process of its own (so that a failing seed behaves as its printed replay
/// command), as many at a time as the machine has cores; all failing seeds are reported
/// together, each with its replay command.
#[test]
fn seeds_under_faults_pass_every_check() {
    let seeds = env_u64("ZK_SIM_SEEDS", 200);
    let start = env_u64("ZK_SIM_START", 1000);
    let secs = options(start).duration.as_secs();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zk-sim"))
        .args(["--seeds", &seeds.to_string(), "--start", &start.to_string()])
        .args(["--secs", &secs.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .expect("run zk-sim");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let failures: Vec<String> = lines
        .iter()
        .filter(|l| l.get("seed").is_some())
        .filter(|l| {
            l.get("error").is_some()
                || l["anomalies"].as_array().is_some_and(|a| !a.is_empty())
                || l["acked_writes"].as_u64() == Some(0)
        })
        .map(|l| {
            format!(
                "seed {} (replay: cargo run -p zk-sim -- --seeds 1 --start {} --secs {secs}): {l:#}",
                l["seed"], l["seed"]
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let summary = lines
        .iter()
        .find(|l| l.get("seeds").is_some())
        .unwrap_or_else(|| panic!("no summary line from zk-sim ({})", out.status));
    let seed_lines = lines.iter().filter(|l| l.get("seed").is_some()).count() as u64;
    assert_eq!(seed_lines, seeds, "one line per seed: {summary}");
    assert!(
        out.status.success(),
        "zk-sim exited with {}: {summary}",
        out.status
    );
    println!("{summary}");
    assert!(
        seeds == 0 || summary["faults"].as_u64() > Some(0),
        "no fault was injected: {summary}"
    );
}

/// A seed that crashes every node first replays exactly in a fresh process (the way the
/// binary runs every seed of a long run): the same fingerprint twice. (Inside a process
/// that ran other seeds it may not: tokio's task ids are process-global.)
#[test]
fn a_power_loss_seed_replays_in_a_fresh_process() {
    let fingerprint = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zk-sim"))
            .args([
                "--seeds",
                "1",
                "--start",
                "7",
                "--secs",
                "8",
                "--crash-all-first",
            ])
            .stderr(std::process::Stdio::null())
            .output()
            .expect("run zk-sim");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|l| {
                l.get("fingerprint")
                    .and_then(|f| f.as_str())
                    .map(String::from)
            })
            .unwrap_or_else(|| panic!("no fingerprint ({}): {stdout}", out.status))
    };
    let (a, b) = (fingerprint(), fingerprint());
    assert_eq!(a, b);
}

/// Replay: the same seed gives the same fingerprint (history with simulated times,
/// faults, final replica states), and a different seed a different one. Fails if
/// anything the simulation does draws from outside the seed (the OS's randomness, a
/// real clock, a thread outside the simulation) — or if the build lacks
/// `--cfg tokio_unstable`, without which turmoil cannot seed tokio's `select!`.
#[test]
fn same_seed_gives_the_same_fingerprint() {
    #[cfg(not(tokio_unstable))]
    panic!(
        "built without --cfg tokio_unstable (a RUSTFLAGS variable replaces \
         .cargo/config.toml's rustflags): seeds cannot replay"
    );
    for seed in [3, 1001] {
        let o = options(seed);
        let a = run(&o);
        let b = run(&o);
        assert!(a.ops > 0, "{a:?}");
        assert_eq!(a.fingerprint, b.fingerprint, "seed {seed}:\n{a:?}\n{b:?}");
    }
    let c = run(&options(4));
    let d = run(&options(3));
    assert_ne!(c.fingerprint, d.fingerprint, "seeds 3 and 4: {c:?}");
}

/// The replay check's negative control: with the nodes' and clients' random draws and
/// openraft's election timeouts left to the OS (`seeded: false`), two runs of one seed
/// differ, and the fingerprint shows it. The first fault crashes every node, so that
/// the restarted nodes elect a leader after random timeouts and every client
/// reconnects after a random backoff (without it, a seed whose leader is never lost
/// can draw nothing that reaches the history, and two unseeded runs may agree).
#[test]
fn negative_control_unseeded_runs_do_not_replay() {
    let mut o = options(3);
    o.seeded = false;
    o.first_fault = Some(Fault::Crash((0..NODES.len()).collect()));
    let a = run(&o);
    let b = run(&o);
    assert_ne!(a.fingerprint, b.fingerprint, "{a:?}\n{b:?}");
}

/// A power loss of the whole ensemble: what was acknowledged was fsynced on a quorum,
/// so it survives, and every node comes back and serves.
#[test]
fn crash_of_every_node_loses_no_acknowledged_write() {
    let mut o = options(7);
    o.first_fault = Some(Fault::Crash((0..NODES.len()).collect()));
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
        o.first_fault = Some(Fault::Crash((0..NODES.len()).collect()));
        o.sync = SyncPolicy::Never;
        let r = run(&o);
        if !r.anomalies.is_empty() {
            return;
        }
    }
    panic!("acknowledging before fsync went unnoticed in 3 seeds");
}

/// Negative control of the linearizability check: nodes whose `setData` ignores the
/// expected version (an injected bug: a compare-and-set succeeds over a newer write)
/// must be caught within three seeds.
#[test]
fn negative_control_lost_update_is_caught() {
    for seed in 11..14 {
        let mut o = options(seed);
        o.bugs = vec![Bug::SetDataIgnoresVersion];
        let r = run(&o);
        if r.anomalies.iter().any(|a| a.starts_with("linearizability")) {
            return;
        }
    }
    panic!("setData ignoring the expected version went unnoticed in 3 seeds");
}
