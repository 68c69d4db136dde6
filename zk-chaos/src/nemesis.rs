//! The nemesis: faults on a seeded random schedule, one at a time (inject, hold, heal,
//! wait until the ensemble serves again, pause, next).
//!
//! The seed fixes the schedule: which faults, in which order, held how long, and which
//! member each picks by role (leader / follower / a random index). The processes and
//! the network are real, so the interleaving of faults with client operations is not
//! replayed exactly; a seed that found an anomaly is the first thing to re-run.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::cluster::Cluster;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// `kill -9` the leader, restart it after the hold.
    KillLeader,
    /// `kill -9` a follower, restart it after the hold.
    KillFollower,
    /// `kill -9` every member at once, restart them all.
    KillAll,
    /// `SIGSTOP` the leader for longer than the election timeout, then `SIGCONT`.
    PauseLeader,
    /// `SIGSTOP` a follower, then `SIGCONT`.
    PauseFollower,
    /// Cut the leader off from every peer (sockets stay open: a silent network).
    IsolateLeader,
    /// Split the members into a majority and a minority at random.
    MajorityMinority,
    /// A bridge: two sides that cannot talk to each other, one member talking to both.
    Bridge,
    /// Slow every link of one member (peer and client) by a fixed delay.
    Delay,
    /// Drop traffic: reset every connection of one member over and over.
    Drop,
    /// Clients of one member hear nothing (its client proxy paused).
    ClientBlackhole,
    /// `kill -9` a follower, delete its data dir, restart it: it must rejoin by snapshot.
    WipeFollower,
}

/// Every fault kind, in schedule-drawing order.
pub const ALL: [Fault; 12] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::KillAll,
    Fault::PauseLeader,
    Fault::PauseFollower,
    Fault::IsolateLeader,
    Fault::MajorityMinority,
    Fault::Bridge,
    Fault::Delay,
    Fault::Drop,
    Fault::ClientBlackhole,
    Fault::WipeFollower,
];

/// One scheduled fault.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What to do.
    pub fault: Fault,
    /// Quiet time before it, ms.
    pub gap_ms: u64,
    /// How long it is held before healing, ms.
    pub hold_ms: u64,
    /// A random number the fault uses to choose its target(s) and parameters.
    pub pick: u64,
}

/// The schedule of a seed: an endless sequence of steps.
#[derive(Debug)]
pub struct Schedule {
    rng: StdRng,
}

impl Schedule {
    /// The schedule for `seed`.
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            rng: StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321),
        }
    }
}

impl Iterator for Schedule {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let fault = ALL[self.rng.random_range(0..ALL.len())];
        Some(Step {
            fault,
            gap_ms: self.rng.random_range(500..2_000),
            // Pauses and partitions outlast the election timeout (300-600 ms) by far.
            hold_ms: self.rng.random_range(1_000..4_000),
            pick: self.rng.random(),
        })
    }
}

/// What the nemesis did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NemesisLog {
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Processes killed with `kill -9` (and restarted).
    pub kill9: u64,
    /// Times the ensemble had no serving leader within the recovery bound after a heal.
    pub slow_recoveries: u64,
    /// One line per fault, in order.
    pub timeline: Vec<String>,
}

impl NemesisLog {
    /// Faults injected in total.
    pub fn total(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// How long the ensemble may take to serve again after a heal before it is counted as
/// a slow recovery (not an anomaly: liveness, not safety).
pub const RECOVERY: Duration = Duration::from_secs(30);

fn followers(c: &Cluster, leader: Option<usize>) -> Vec<usize> {
    (0..c.len()).filter(|i| Some(*i) != leader).collect()
}

/// Injects `step`, holds it, heals it and waits for the ensemble to recover.
pub async fn apply(c: &mut Cluster, step: &Step, log: &mut NemesisLog, t0: tokio::time::Instant) {
    let n = c.len();
    let injected_at = t0.elapsed().as_secs_f64();
    tracing::info!("{injected_at:>8.1}s injecting {:?}", step.fault);
    let leader = c.leader().await;
    let pick = |k: usize| (step.pick as usize) % k.max(1);
    let hold = Duration::from_millis(step.hold_ms);
    let fs = followers(c, leader);
    let follower = fs[pick(fs.len())];
    let any = pick(n);
    let what: String;
    match step.fault {
        Fault::KillLeader | Fault::KillFollower => {
            let target = if step.fault == Fault::KillLeader {
                leader.unwrap_or(any)
            } else {
                follower
            };
            what = format!("kill -9 server {}", target + 1);
            c.kill9(target).await;
            log.kill9 += 1;
            tokio::time::sleep(hold).await;
            let _ = c.spawn(target);
        }
        Fault::KillAll => {
            what = "kill -9 every server".into();
            for i in 0..n {
                c.kill9(i).await;
                log.kill9 += 1;
            }
            tokio::time::sleep(hold / 2).await;
            for i in 0..n {
                let _ = c.spawn(i);
            }
        }
        Fault::PauseLeader | Fault::PauseFollower => {
            let target = if step.fault == Fault::PauseLeader {
                leader.unwrap_or(any)
            } else {
                follower
            };
            what = format!("SIGSTOP server {}", target + 1);
            c.signal_stop(target, true).await;
            tokio::time::sleep(hold).await;
            c.signal_stop(target, false).await;
        }
        Fault::IsolateLeader => {
            let target = leader.unwrap_or(any);
            what = format!("isolate server {} (leader) from its peers", target + 1);
            for j in 0..n {
                if j != target {
                    c.set_link(target, j, false);
                }
            }
            tokio::time::sleep(hold).await;
        }
        Fault::MajorityMinority => {
            // A random minority: floor((n-1)/2) members, drawn from the pick.
            let mut order: Vec<usize> = (0..n).collect();
            let mut r = StdRng::seed_from_u64(step.pick);
            for i in (1..n).rev() {
                order.swap(i, r.random_range(0..=i));
            }
            let minority: Vec<usize> = order[..(n - 1) / 2].to_vec();
            what = format!(
                "partition: minority {:?} | majority {:?}",
                minority.iter().map(|i| i + 1).collect::<Vec<_>>(),
                order[(n - 1) / 2..]
                    .iter()
                    .map(|i| i + 1)
                    .collect::<Vec<_>>()
            );
            for &a in &minority {
                for b in 0..n {
                    if !minority.contains(&b) {
                        c.set_link(a, b, false);
                    }
                }
            }
            tokio::time::sleep(hold).await;
        }
        Fault::Bridge => {
            // The bridge member talks to everyone; the others split into two halves
            // that cannot talk to each other.
            let bridge = any;
            let others: Vec<usize> = (0..n).filter(|i| *i != bridge).collect();
            let (left, right) = others.split_at(others.len() / 2);
            what = format!(
                "bridge: {:?} | {} | {:?}",
                left.iter().map(|i| i + 1).collect::<Vec<_>>(),
                bridge + 1,
                right.iter().map(|i| i + 1).collect::<Vec<_>>()
            );
            for &a in left {
                for &b in right {
                    c.set_link(a, b, false);
                }
            }
            tokio::time::sleep(hold).await;
        }
        Fault::Delay => {
            let ms = 20 + step.pick % 180;
            what = format!("delay every link of server {} by {ms} ms", any + 1);
            for p in c.proxies_of(any) {
                p.set_delay(Duration::from_millis(ms));
            }
            tokio::time::sleep(hold).await;
        }
        Fault::Drop => {
            what = format!(
                "drop: reset every connection of server {} repeatedly",
                any + 1
            );
            let until = tokio::time::Instant::now() + hold;
            while tokio::time::Instant::now() < until {
                for p in c.proxies_of(any) {
                    p.cut();
                }
                tokio::time::sleep(Duration::from_millis(150 + step.pick % 200)).await;
            }
        }
        Fault::ClientBlackhole => {
            what = format!("blackhole the clients of server {}", any + 1);
            c.client_proxies[any].pause();
            tokio::time::sleep(hold).await;
        }
        Fault::WipeFollower => {
            what = format!(
                "kill -9 server {}, wipe its data dir, restart",
                follower + 1
            );
            c.kill9(follower).await;
            log.kill9 += 1;
            let _ = c.wipe(follower);
            tokio::time::sleep(hold / 2).await;
            let _ = c.spawn(follower);
        }
    }
    tracing::info!("{:>8.1}s healing: {what}", t0.elapsed().as_secs_f64());
    c.heal_network();
    for i in 0..n {
        c.signal_stop(i, false).await;
        let _ = c.spawn(i);
    }
    let fault = serde_json::to_value(step.fault)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    *log.faults.entry(fault).or_default() += 1;
    let unhealthy = c.wait_healthy(RECOVERY).await.err();
    if unhealthy.is_some() {
        log.slow_recoveries += 1;
    }
    log.timeline.push(format!(
        "{injected_at:>8.1}s {what} (held {} ms){}",
        step.hold_ms,
        match unhealthy {
            None => String::new(),
            Some(e) => format!("; {e}"),
        }
    ));
}
