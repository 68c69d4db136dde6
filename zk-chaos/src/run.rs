//! One chaos run: start the ensemble, run the clients while the nemesis injects faults,
//! heal, read every replica, check, report.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::check::{self, durability, fence, Anomaly};
use crate::cluster::{Cluster, ClusterOptions};
use crate::error::ChaosError;
use crate::history::Outcome;
use crate::nemesis::{self, NemesisLog, Schedule};
use crate::replicas;
use crate::workload::{self, LockMode, Shared};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Seeds the fault schedule and the clients' choices.
    pub seed: u64,
    /// How long the clients and the nemesis run.
    pub duration: Duration,
    /// Voting members (3 or 5).
    pub nodes: usize,
    /// The `zk-server` binary.
    pub server_bin: PathBuf,
    /// Register clients.
    pub register_clients: usize,
    /// Set clients.
    pub set_clients: usize,
    /// Lock clients.
    pub lock_clients: usize,
    /// How lock holders write (unfenced is the negative control).
    pub lock_mode: LockMode,
    /// Inject faults (off: a calm run, the baseline).
    pub faults: bool,
    /// Keep the data dirs and server logs.
    pub keep_dir: bool,
    /// Search states per key for the linearizability check.
    pub budget: check::wgl::Budget,
}

impl RunOptions {
    /// The defaults for `seed` and `duration` on a 3-node ensemble.
    pub fn new(seed: u64, duration: Duration, server_bin: PathBuf) -> RunOptions {
        RunOptions {
            seed,
            duration,
            nodes: 3,
            server_bin,
            register_clients: 4,
            set_clients: 3,
            lock_clients: 3,
            lock_mode: LockMode::Fenced,
            faults: true,
            keep_dir: false,
            budget: check::DEFAULT_BUDGET,
        }
    }
}

/// The figures of a run; [`Report::json`] is the one line `zk-chaos` ends with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The seed (re-run with `--seed` to replay the schedule).
    pub seed: u64,
    /// Servers in the ensemble.
    pub nodes: usize,
    /// Seconds the workload ran.
    pub duration_s: u64,
    /// Operations checked: register and set operations (linearizability) plus
    /// lock-protected increments attempted (fence log and durability).
    pub ops_checked: u64,
    /// Of the register and set operations: completed ok.
    pub ops_ok: u64,
    /// ... failed definitely (BadVersion and the like).
    pub ops_failed: u64,
    /// ... indeterminate (timeout, connection loss).
    pub ops_indeterminate: u64,
    /// Lock-protected increments attempted (holders that read the counter).
    pub lock_increments: u64,
    /// Entries in the fenced resource's log (accepted increments).
    pub fence_log: u64,
    /// Keys whose histories were checked.
    pub keys_checked: u64,
    /// Keys the search could not decide within its budget.
    pub keys_inconclusive: u64,
    /// Faults injected in total.
    pub faults_injected: u64,
    /// Faults by kind.
    pub faults: std::collections::BTreeMap<String, u64>,
    /// Processes killed with `kill -9` (each restarted).
    pub kill9: u64,
    /// Heals after which the ensemble needed more than 30 s to serve again.
    pub slow_recoveries: u64,
    /// Anomalies found (linearizability, fencing, durability, divergence).
    pub anomalies: u64,
    /// Acknowledged writes checked on every replica.
    pub acked_writes: u64,
    /// Acknowledged writes missing on some replica.
    pub acked_writes_lost: u64,
}

impl Report {
    /// The report as one JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The figures.
    pub report: Report,
    /// The anomalies, with minimal histories.
    pub anomalies: Vec<Anomaly>,
    /// What the nemesis did.
    pub nemesis: NemesisLog,
    /// The run dir, when kept.
    pub kept_dir: Option<PathBuf>,
    /// The whole recorded history (registers and sets).
    pub history: Vec<crate::history::Entry>,
}

/// Runs one chaos run.
pub async fn run(o: &RunOptions) -> Result<RunResult, ChaosError> {
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: o.nodes,
        server_bin: o.server_bin.clone(),
        tick_ms: 500,
        snapshot_every: 300,
        keep_dir: o.keep_dir,
    })
    .await?;
    let result = drive(&mut cluster, o).await;
    let kept_dir = cluster.shutdown().await;
    let mut out = result?;
    out.kept_dir = kept_dir;
    Ok(out)
}

async fn drive(cluster: &mut Cluster, o: &RunOptions) -> Result<RunResult, ChaosError> {
    let setup_client =
        workload::connect(&cluster.connect_string(0))
            .await
            .ok_or(ChaosError::Client {
                what: "connecting the setup client".into(),
                source: zk_client::Error::Timeout,
            })?;
    workload::setup(&setup_client, o.duration)
        .await
        .map_err(|source| ChaosError::Client {
            what: "creating the tree".into(),
            source,
        })?;
    let _ = tokio::time::timeout(Duration::from_secs(2), setup_client.close()).await;

    tracing::info!("ensemble up, tree created; starting the clients");
    let shared = Shared::new();
    let t0 = Instant::now();
    let deadline = t0 + o.duration;
    let mut tasks = tokio::task::JoinSet::new();
    let mut id = 0usize;
    let mut next = |cluster: &Cluster| {
        id += 1;
        (id, cluster.connect_string(id % cluster.len()))
    };
    for _ in 0..o.register_clients {
        let (id, cs) = next(cluster);
        let seed = o.seed.wrapping_mul(1000).wrapping_add(id as u64);
        tasks.spawn(workload::register_client(
            id,
            cs,
            shared.clone(),
            seed,
            deadline,
        ));
    }
    for _ in 0..o.set_clients {
        let (id, cs) = next(cluster);
        let seed = o.seed.wrapping_mul(1000).wrapping_add(id as u64);
        tasks.spawn(workload::set_client(id, cs, shared.clone(), seed, deadline));
    }
    for _ in 0..o.lock_clients {
        let (id, cs) = next(cluster);
        let seed = o.seed.wrapping_mul(1000).wrapping_add(id as u64);
        tasks.spawn(workload::lock_client(
            cs,
            shared.clone(),
            o.lock_mode,
            seed,
            deadline,
        ));
    }

    let mut log = NemesisLog::default();
    if o.faults {
        for step in Schedule::new(o.seed) {
            // Leave room for the fault to be held and healed before the deadline.
            let needed = Duration::from_millis(step.gap_ms + step.hold_ms);
            if Instant::now() + needed >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(step.gap_ms)).await;
            nemesis::apply(cluster, &step, &mut log, t0).await;
        }
    }
    tracing::info!("nemesis done; waiting for the clients");
    tokio::time::sleep_until(deadline).await;
    // Every client operation is bounded; give the loops time to notice the deadline.
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }

    tracing::info!(
        drained = drained.is_ok(),
        "clients done; healing and reading every replica"
    );
    // Heal everything, then read each replica directly.
    cluster.heal_network();
    for i in 0..cluster.len() {
        cluster.signal_stop(i, false).await;
        cluster.spawn(i)?;
    }
    // A server that does not serve again after healing is a liveness failure: reported
    // as an anomaly, and the replicas that do answer are still checked.
    let mut liveness: Vec<String> = Vec::new();
    if let Err(e) = cluster.wait_healthy(Duration::from_secs(60)).await {
        liveness.push(format!("after healing: {e}"));
    }
    let (regs, sets) = workload::keys(o.duration);
    let mut replicas_state = Vec::new();
    // Late indeterminate writes may still land: re-read until the replicas agree (or
    // give up after a few rounds and report the divergence).
    for round in 0..5 {
        replicas_state.clear();
        let mut unreadable = Vec::new();
        for node in &cluster.nodes {
            match replicas::read(&node.client_addr, &regs, &sets).await {
                Ok(s) => replicas_state.push(s),
                Err(e) => {
                    unreadable.push(format!("server {} unreadable after healing: {e}", node.id))
                }
            }
        }
        let agree = unreadable.is_empty() && replicas_state.windows(2).all(|w| w[0] == w[1]);
        if agree || round == 4 {
            liveness.extend(unreadable);
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    tracing::info!("checking the history");
    let check_started = std::time::Instant::now();
    let entries = shared.history.entries();
    // CPU-bound: off the async threads, so Ctrl-C and timers keep working.
    let lin = {
        let (entries, budget) = (entries.clone(), o.budget);
        tokio::task::spawn_blocking(move || check::linearizability(&entries, budget))
            .await
            .map_err(|e| ChaosError::Invalid(format!("the checker panicked: {e}")))?
    };
    tracing::info!(
        secs = check_started.elapsed().as_secs_f64(),
        keys = lin.keys,
        inconclusive = lin.inconclusive,
        "linearizability checked"
    );
    let mut anomalies = lin.anomalies.clone();
    for l in liveness {
        anomalies.push(Anomaly {
            kind: "liveness".into(),
            detail: l,
            history: Vec::new(),
        });
    }
    if let Some(first) = replicas_state.first() {
        for a in fence::check(&first.fence, first.counter) {
            anomalies.push(Anomaly {
                kind: "fencing".into(),
                detail: a,
                history: Vec::new(),
            });
        }
    }
    let acked = shared.acked();
    let dur = durability::check(&replicas_state, &acked);
    for a in &dur.anomalies {
        anomalies.push(Anomaly {
            kind: "durability".into(),
            detail: a.clone(),
            history: Vec::new(),
        });
    }
    let count = |f: fn(&Outcome) -> bool| entries.iter().filter(|e| f(&e.outcome)).count() as u64;
    let lock_increments = shared.increments.load(Ordering::SeqCst);
    let report = Report {
        seed: o.seed,
        nodes: o.nodes,
        duration_s: o.duration.as_secs(),
        ops_checked: lin.ops_checked + lock_increments,
        ops_ok: count(|o| matches!(o, Outcome::Ok(_))),
        ops_failed: count(|o| matches!(o, Outcome::Fail)),
        ops_indeterminate: count(|o| matches!(o, Outcome::Unknown)),
        lock_increments,
        fence_log: replicas_state.first().map_or(0, |s| s.fence.len() as u64),
        keys_checked: lin.keys,
        keys_inconclusive: lin.inconclusive,
        faults_injected: log.total(),
        faults: log.faults.clone(),
        kill9: log.kill9,
        slow_recoveries: log.slow_recoveries,
        anomalies: anomalies.len() as u64,
        acked_writes: dur.acked_writes,
        acked_writes_lost: dur.acked_writes_lost,
    };
    Ok(RunResult {
        report,
        anomalies,
        nemesis: log,
        kept_dir: None,
        history: entries,
    })
}
