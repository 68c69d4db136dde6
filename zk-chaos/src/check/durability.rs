//! Durability and convergence: after the faults are healed, every replica, read
//! directly (not through a proxy) after `sync`, holds every write that was acknowledged
//! to a client, and all replicas hold the same data.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::fence::FenceEntry;

/// What one replica holds, read directly after healing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ReplicaState {
    /// Register key -> (value, version).
    pub registers: BTreeMap<u32, (u64, i32)>,
    /// Set key -> elements.
    pub sets: BTreeMap<u32, BTreeSet<u32>>,
    /// The fenced resource's log.
    pub fence: Vec<FenceEntry>,
    /// The lock-protected counter.
    pub counter: Option<u64>,
}

/// The writes clients saw acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Acked {
    /// (set key, element) of acknowledged adds.
    pub adds: Vec<(u32, u32)>,
    /// (register key, new version) of acknowledged compare-and-sets.
    pub cas: Vec<(u32, i32)>,
    /// (token, value) of acknowledged lock-protected increments.
    pub increments: Vec<(u64, u64)>,
}

impl Acked {
    /// How many acknowledged writes there are.
    pub fn len(&self) -> usize {
        self.adds.len() + self.cas.len() + self.increments.len()
    }

    /// True when no write was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The result of the durability check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DurabilityReport {
    /// Acknowledged writes checked.
    pub acked_writes: u64,
    /// Acknowledged writes missing from at least one replica.
    pub acked_writes_lost: u64,
    /// What went wrong, one line each.
    pub anomalies: Vec<String>,
}

/// Checks `replicas` (one per server, by index) against the `acked` writes.
pub fn check(replicas: &[ReplicaState], acked: &Acked) -> DurabilityReport {
    let mut r = DurabilityReport {
        acked_writes: acked.len() as u64,
        ..DurabilityReport::default()
    };
    let lost = |what: String, r: &mut DurabilityReport| {
        r.acked_writes_lost += 1;
        if r.anomalies.len() < 20 {
            r.anomalies.push(what);
        }
    };
    for &(key, elem) in &acked.adds {
        let missing: Vec<usize> = replicas
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.sets.get(&key).is_some_and(|set| set.contains(&elem)))
            .map(|(i, _)| i + 1)
            .collect();
        if !missing.is_empty() {
            lost(
                format!("acknowledged add of {elem} to set {key} missing on servers {missing:?}"),
                &mut r,
            );
        }
    }
    for &(key, version) in &acked.cas {
        let missing: Vec<usize> = replicas
            .iter()
            .enumerate()
            .filter(|(_, s)| s.registers.get(&key).is_none_or(|(_, v)| *v < version))
            .map(|(i, _)| i + 1)
            .collect();
        if !missing.is_empty() {
            lost(format!("acknowledged version {version} of register {key} missing on servers {missing:?}"), &mut r);
        }
    }
    for &(token, value) in &acked.increments {
        let missing: Vec<usize> = replicas
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.fence.iter().any(|e| e.token == token && e.value == value))
            .map(|(i, _)| i + 1)
            .collect();
        if !missing.is_empty() {
            lost(format!("acknowledged increment to {value} (token {token}) missing on servers {missing:?}"), &mut r);
        }
    }
    if let Some(first) = replicas.first() {
        for (i, s) in replicas.iter().enumerate().skip(1) {
            if s != first {
                r.anomalies.push(format!(
                    "replicas diverge: server {} differs from server 1",
                    i + 1
                ));
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(elems: &[u32]) -> ReplicaState {
        let mut s = ReplicaState::default();
        s.sets.insert(0, elems.iter().copied().collect());
        s
    }

    #[test]
    fn all_acked_present_everywhere_passes() {
        let acked = Acked {
            adds: vec![(0, 1), (0, 2)],
            ..Acked::default()
        };
        let r = check(&[replica(&[1, 2, 3]), replica(&[1, 2, 3])], &acked);
        assert_eq!(r.acked_writes, 2);
        assert_eq!(r.acked_writes_lost, 0);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn a_lost_write_and_divergence_are_caught() {
        let acked = Acked {
            adds: vec![(0, 1), (0, 2)],
            ..Acked::default()
        };
        let r = check(&[replica(&[1, 2]), replica(&[1])], &acked);
        assert_eq!(r.acked_writes_lost, 1);
        assert!(
            r.anomalies.iter().any(|a| a.contains("servers [2]")),
            "{:?}",
            r.anomalies
        );
        assert!(
            r.anomalies.iter().any(|a| a.contains("diverge")),
            "{:?}",
            r.anomalies
        );
    }
}
