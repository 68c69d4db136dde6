//! One seed: build the simulated world, run the workload under the fault schedule, heal,
//! read every replica, check.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use zk_chaos::check::durability::{self, Acked, ReplicaState};
use zk_chaos::check::{self, fence};
use zk_chaos::history::Entry;
use zk_chaos::workload::{self, LockMode, Shared};
use zk_server::config::SyncPolicy;
use zk_server::sim::Bug;
use zk_server::Config;

use crate::nemesis::{self, Fault, Planned, CLIENTS, NODES};

/// What to run for one seed.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seeds the fault schedule, the clients and turmoil (message latencies, losses).
    pub seed: u64,
    /// How long (simulated) the clients run.
    pub duration: Duration,
    /// How long (simulated) the healed cluster settles before every replica is read
    /// (each read is retried for a few more seconds if a node does not serve yet).
    pub settle: Duration,
    /// Inject faults (off: a clean run).
    pub faults: bool,
    /// Whether the nodes fsync. [`SyncPolicy::Never`] acknowledges writes before they
    /// are durable: a negative control the durability check must catch.
    pub sync: SyncPolicy,
    /// Whether the lock clients fence their writes. [`LockMode::Unfenced`] is the
    /// negative control of the lock-safety check.
    pub lock: LockMode,
    /// The first fault of the schedule, whatever the seed draws after it (see
    /// [`nemesis::plan`]): a negative control's sure trigger.
    pub first_fault: Option<Fault>,
    /// Draw everything from the seed (on: the run replays exactly). Off is the replay
    /// check's negative control: the nodes' random draws (openraft's election timeouts
    /// included) and the clients' come from the OS, so two runs of a seed differ.
    pub seeded: bool,
    /// Bugs injected into the nodes on purpose (negative controls of the checkers);
    /// empty: none.
    pub bugs: Vec<Bug>,
    /// The largest latency of a message when no latency fault is active (each message
    /// takes 0 to this long).
    pub max_latency: Duration,
}

impl SimOptions {
    /// The default run of `seed`: 20 s simulated, 3 s to settle, faults on, fsync on,
    /// fenced locks, everything drawn from the seed.
    pub fn new(seed: u64) -> SimOptions {
        SimOptions {
            seed,
            duration: Duration::from_secs(20),
            settle: Duration::from_secs(3),
            faults: true,
            sync: SyncPolicy::Always,
            lock: LockMode::Fenced,
            first_fault: None,
            seeded: true,
            bugs: Vec::new(),
            max_latency: Duration::from_millis(5),
        }
    }
}

/// What one seed did and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Operations in the history (all entered the linearizability check).
    pub ops: u64,
    /// Operations that completed with a definite outcome.
    pub ops_ok: u64,
    /// Acknowledged writes checked for durability on every replica.
    pub acked_writes: u64,
    /// Lock-protected increments attempted.
    pub increments: u64,
    /// Faults injected.
    pub faults: u64,
    /// Terms in which a leader was seen (looked at after every step).
    pub terms_with_leader: u64,
    /// Terms led by more than one node (legal with openraft's default leader ids).
    pub terms_with_several_leaders: u64,
    /// Keys whose linearizability search ran out of budget.
    pub inconclusive: u64,
    /// Everything that went wrong (empty: the seed passed).
    pub anomalies: Vec<String>,
    /// A digest of the history (operations, outcomes, simulated times), the fault
    /// schedule, the final replica states and the simulated duration: the same seed
    /// must give the same digest (in the same build).
    pub digest: u64,
    /// [`SeedReport::digest`] in hex: what `zk-sim --seeds 1 --start N` prints to
    /// compare two runs of a seed.
    pub fingerprint: String,
    /// Simulated time the run took, ms.
    pub sim_ms: u64,
}

/// What the client host hands back to the checker.
#[derive(Default)]
struct Outcome {
    history: Vec<Entry>,
    acked: Acked,
    increments: u64,
    replicas: Vec<Result<ReplicaState, String>>,
    setup_failed: Option<String>,
}

/// The connect string of the whole ensemble.
fn ensemble() -> String {
    ensemble_from(0)
}

/// The connect string of the whole ensemble starting at node `first % 3`: each client
/// starts on its own node (the clients do not shuffle), so that reads and writes go
/// through followers as well as the leader.
fn ensemble_from(first: usize) -> String {
    (0..NODES.len())
        .map(|i| format!("{}:2181", NODES[(first + i) % NODES.len()]))
        .collect::<Vec<_>>()
        .join(",")
}

fn node_config(i: usize, o: &SimOptions) -> Config {
    let peers = NODES
        .iter()
        .enumerate()
        .map(|(j, n)| (j as u64 + 1, format!("{n}:2888")))
        .collect();
    Config {
        node_id: i as u64 + 1,
        peers,
        peer_addr: Some("0.0.0.0:2888".into()),
        client_addr: "0.0.0.0:2181".into(),
        admin_addr: "0.0.0.0:8080".into(),
        data_dir: "/zk-data".into(),
        sync: o.sync,
        heartbeat_ms: 100,
        election_timeout_ms: (500, 1000),
        ..Config::default()
    }
}

/// Runs one seed to the end and checks it. Errors only if the simulation itself broke
/// (a host panicked, the run did not finish in its time limit).
pub fn run_seed(o: &SimOptions) -> Result<SeedReport, String> {
    let warmup = Duration::from_secs(2);
    let settle = o.settle;
    // What the nodes and clients draw at random (session passwords, host order, lock
    // node GUIDs) comes from the seed too.
    zk_server::sim::seed_random(o.seeded.then_some(o.seed ^ 0x7365_7276_6572));
    zk_client::random::seed(o.seeded.then_some(o.seed ^ 0x636c_6965_6e74));
    zk_server::sim::inject(&o.bugs);
    let mut sim = turmoil::Builder::new()
        .rng_seed(o.seed)
        .tick_duration(Duration::from_millis(10))
        .min_message_latency(Duration::from_millis(0))
        .max_message_latency(o.max_latency)
        .simulation_duration(o.duration + Duration::from_secs(120))
        .build();

    for (i, name) in NODES.iter().enumerate() {
        let config = node_config(i, o);
        sim.host(*name, move || {
            let config = config.clone();
            async move {
                zk_server::run(config, std::future::pending::<()>()).await?;
                Ok(())
            }
        });
    }

    let out: Arc<Mutex<Outcome>> = Arc::default();
    {
        let out = out.clone();
        let duration = o.duration;
        let seed = o.seed;
        let lock = o.lock;
        sim.client(CLIENTS, async move {
            clients(out, duration, warmup, settle, seed, lock).await;
            Ok(())
        });
    }

    let plan = if o.faults {
        nemesis::plan(o.seed, warmup, o.duration, o.first_fault.clone())
    } else {
        Vec::new()
    };
    let mut crashed: BTreeSet<usize> = BTreeSet::new();
    let mut next = 0usize;
    let mut active: Option<Planned> = None;
    let mut healed = false;
    zk_server::sim::reset_observed();
    // Leaders seen per term, after every step. openraft 0.9 runs in its default
    // "advanced leader id" mode: a leader is identified by (term, node), and two nodes
    // may both lead the same term (each elected by a quorum for its own leader id), so
    // "one leader per term" is not an invariant here; it is counted, not failed.
    let mut leaders_of: std::collections::BTreeMap<u64, BTreeSet<u64>> = Default::default();
    let wall = std::time::Instant::now();
    let mut last_second = 0;
    loop {
        let now = sim.elapsed();
        if now.as_secs() != last_second {
            last_second = now.as_secs();
            tracing::info!(
                seed = o.seed,
                sim_secs = last_second,
                wall_ms = wall.elapsed().as_millis() as u64,
                "simulated"
            );
        }
        if let Some(f) = active.take() {
            if now >= f.until {
                undo(&mut sim, &f.fault, &mut crashed, o.max_latency);
            } else {
                active = Some(f);
            }
        }
        if active.is_none() && !healed {
            if let Some(f) = plan.get(next).filter(|f| now >= f.at) {
                tracing::info!(?f, "fault");
                apply(&mut sim, &f.fault, &mut crashed);
                active = Some(f.clone());
                next += 1;
            }
        }
        if !healed && now >= o.duration {
            if let Some(f) = active.take() {
                undo(&mut sim, &f.fault, &mut crashed, o.max_latency);
            }
            healed = true;
        }
        let stepped = sim.step();
        for (term, node) in zk_server::sim::leaders() {
            leaders_of.entry(term).or_default().insert(node);
        }
        match stepped {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("seed {}: simulation failed: {e}", o.seed)),
        }
    }
    let sim_ms = sim.elapsed().as_millis() as u64;
    let out = std::mem::take(&mut *out.lock().unwrap_or_else(|e| e.into_inner()));
    let mut report = check_outcome(o, out, &plan[..next], sim_ms);
    report.terms_with_leader = leaders_of.len() as u64;
    report.terms_with_several_leaders = leaders_of.values().filter(|l| l.len() > 1).count() as u64;
    Ok(report)
}

fn apply(sim: &mut turmoil::Sim<'_>, fault: &Fault, crashed: &mut BTreeSet<usize>) {
    match fault {
        Fault::Isolate(n) => {
            for (j, other) in NODES.iter().enumerate() {
                if j != *n {
                    sim.partition(NODES[*n], *other);
                }
            }
            sim.partition(NODES[*n], CLIENTS);
        }
        Fault::PartitionPeers(n) => {
            for (j, other) in NODES.iter().enumerate() {
                if j != *n {
                    sim.partition(NODES[*n], *other);
                }
            }
        }
        Fault::Crash(nodes) => {
            for n in nodes {
                sim.crash(NODES[*n]);
                crashed.insert(*n);
            }
        }
        Fault::Latency(d) => sim.set_max_message_latency(*d),
        Fault::Flaky(per_mille) => sim.set_fail_rate(f64::from(*per_mille) / 1000.0),
    }
}

fn undo(
    sim: &mut turmoil::Sim<'_>,
    fault: &Fault,
    crashed: &mut BTreeSet<usize>,
    base_latency: Duration,
) {
    match fault {
        Fault::Isolate(n) | Fault::PartitionPeers(n) => {
            for (j, other) in NODES.iter().enumerate() {
                if j != *n {
                    sim.repair(NODES[*n], *other);
                }
            }
            sim.repair(NODES[*n], CLIENTS);
        }
        Fault::Crash(_) => {
            for n in std::mem::take(crashed) {
                sim.bounce(NODES[n]);
            }
        }
        Fault::Latency(_) => sim.set_max_message_latency(base_latency),
        Fault::Flaky(_) => sim.set_fail_rate(0.0),
    }
}

/// The client host: set up the tree, run the clients until `duration`, wait for the
/// healed cluster to settle, read every replica.
async fn clients(
    out: Arc<Mutex<Outcome>>,
    duration: Duration,
    warmup: Duration,
    settle: Duration,
    seed: u64,
    lock: LockMode,
) {
    let start = tokio::time::Instant::now();
    let cs = ensemble();
    let setup = async {
        loop {
            if let Some(c) = workload::connect(&cs).await {
                if workload::setup(&c, duration).await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), setup)
        .await
        .is_err()
    {
        out.lock().unwrap_or_else(|e| e.into_inner()).setup_failed =
            Some("the ensemble did not come up within 30 s".into());
        return;
    }
    tokio::time::sleep_until(start + warmup).await;
    let shared = Shared::new();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for id in 0..2 {
        tasks.push(tokio::spawn(workload::register_client(
            id,
            ensemble_from(id),
            shared.clone(),
            seed.wrapping_mul(31).wrapping_add(id as u64),
            deadline,
        )));
    }
    tasks.push(tokio::spawn(workload::set_client(
        2,
        ensemble_from(2),
        shared.clone(),
        seed.wrapping_mul(31).wrapping_add(2),
        deadline,
    )));
    for id in 3..5 {
        tasks.push(tokio::spawn(workload::lock_client(
            ensemble_from(id as usize),
            shared.clone(),
            lock,
            seed.wrapping_mul(31).wrapping_add(id),
            deadline,
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    tokio::time::sleep_until(tokio::time::Instant::now().max(deadline) + settle).await;
    let (regs, sets) = workload::keys(duration);
    let mut replicas = Vec::new();
    for n in NODES {
        let addr = format!("{n}:2181");
        let mut last = String::new();
        let mut got = None;
        for _ in 0..5 {
            match zk_chaos::replicas::read(&addr, &regs, &sets).await {
                Ok(s) => {
                    got = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        replicas.push(got.ok_or_else(|| format!("{addr} did not serve after healing: {last}")));
    }
    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
    o.history = shared.history.entries();
    o.acked = shared.acked();
    o.increments = shared.increments.load(std::sync::atomic::Ordering::SeqCst);
    o.replicas = replicas;
}

fn check_outcome(o: &SimOptions, out: Outcome, faults: &[Planned], sim_ms: u64) -> SeedReport {
    let mut report = SeedReport {
        seed: o.seed,
        ops: out.history.len() as u64,
        ops_ok: out
            .history
            .iter()
            .filter(|e| e.complete_us.is_some())
            .count() as u64,
        increments: out.increments,
        faults: faults.len() as u64,
        sim_ms,
        ..SeedReport::default()
    };
    if let Some(e) = out.setup_failed {
        report.anomalies.push(format!("liveness: {e}"));
    }
    let lin = check::linearizability(&out.history, check::DEFAULT_BUDGET);
    report.inconclusive = lin.inconclusive;
    report.anomalies.extend(
        lin.anomalies
            .iter()
            .map(|a| format!("{}: {}", a.kind, a.detail)),
    );
    let mut states = Vec::new();
    for r in &out.replicas {
        match r {
            Ok(s) => states.push(s.clone()),
            Err(e) => report.anomalies.push(format!("liveness: {e}")),
        }
    }
    if !states.is_empty() {
        let d = durability::check(&states, &out.acked);
        report.acked_writes = d.acked_writes;
        report.anomalies.extend(d.anomalies);
        for s in &states {
            report.anomalies.extend(
                fence::check(&s.fence, s.counter)
                    .into_iter()
                    .map(|a| format!("fencing: {a}")),
            );
        }
    }
    report.anomalies.dedup();

    // Everything the run produced, simulated timestamps included: two runs of one seed
    // (same build) must agree on every bit of it.
    let mut h = DefaultHasher::new();
    for e in &out.history {
        e.hash(&mut h);
    }
    faults.hash(&mut h);
    for s in &states {
        format!("{s:?}").hash(&mut h);
    }
    (out.increments, sim_ms).hash(&mut h);
    report.digest = h.finish();
    report.fingerprint = format!("{:016x}", report.digest);
    report
}
