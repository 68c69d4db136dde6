//! The fault schedule of one seed: at seeded intervals of simulated time, one fault
//! (a partition, a crash and restart of one or two nodes, a latency spike, flaky links),
//! undone a few seconds later; everything healed when the workload ends.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The server hosts.
pub const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The host running every client.
pub const CLIENTS: &str = "clients";

/// One fault, as applied to the simulation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Cut one node off from the other nodes and the clients.
    Isolate(usize),
    /// Cut one node off from the other nodes only (clients still reach it).
    PartitionPeers(usize),
    /// Crash nodes (losing what their disks had not fsynced); restarted when healed.
    Crash(Vec<usize>),
    /// Raise the maximum message latency.
    Latency(Duration),
    /// Links fail at random (and are repaired at random) with this probability per
    /// message, in per mille.
    Flaky(u32),
}

/// A fault and when it starts and ends, in simulated time since the start.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Planned {
    /// When it is applied.
    pub at: Duration,
    /// When it is undone.
    pub until: Duration,
    /// What.
    pub fault: Fault,
}

/// The faults of one seed over `duration` (none in its first `warmup`): one at a time,
/// each lasting 0.5–4 s, 0.5–3 s apart; a crash may take one node, two (a majority: the
/// cluster stops until they are back) or all three (a power loss). `first`: the first
/// fault, 0.5–3 s after the warmup, lasting 0.5–2 s (a negative control's sure trigger).
pub fn plan(seed: u64, warmup: Duration, duration: Duration, first: Option<Fault>) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321);
    let mut out = Vec::new();
    let mut t = warmup;
    if let Some(fault) = first {
        t += Duration::from_millis(rng.random_range(500..3000));
        let len = Duration::from_millis(rng.random_range(500..2000));
        out.push(Planned {
            at: t,
            until: t + len,
            fault,
        });
        t += len;
    }
    loop {
        t += Duration::from_millis(rng.random_range(500..3000));
        let len = Duration::from_millis(rng.random_range(500..4000));
        if t + len >= duration {
            return out;
        }
        let node = rng.random_range(0..NODES.len());
        let fault = match rng.random_range(0..10) {
            0..=1 => Fault::Isolate(node),
            2 => Fault::PartitionPeers(node),
            3..=5 => Fault::Crash(vec![node]),
            6 => Fault::Crash(vec![node, (node + 1) % NODES.len()]),
            7 => Fault::Latency(Duration::from_millis(rng.random_range(20..200))),
            8 => Fault::Flaky(rng.random_range(1..20)),
            _ if rng.random_bool(0.5) => Fault::Crash((0..NODES.len()).collect()),
            _ => Fault::Latency(Duration::from_millis(rng.random_range(20..200))),
        };
        out.push(Planned {
            at: t,
            until: t + len,
            fault,
        });
        t += len;
    }
}
