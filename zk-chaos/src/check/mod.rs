//! The checkers: linearizability per key ([`wgl`] with the [`models`]), lock safety
//! ([`fence`]) and durability ([`durability`]).

pub mod durability;
pub mod fence;
pub mod models;
pub mod wgl;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::Entry;
use wgl::{Model, Verdict};

/// Search allowed per key before the key is reported inconclusive.
pub const DEFAULT_BUDGET: wgl::Budget = wgl::Budget {
    states: 2_000_000,
    time: std::time::Duration::from_secs(20),
};

/// One anomaly: what, where, and a small history that shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// `"linearizability"`, `"fencing"`, `"durability"` or `"liveness"` (a server that
    /// does not serve again after healing).
    pub kind: String,
    /// What went wrong (the key, the write, ...).
    pub detail: String,
    /// A minimal failing history (linearizability anomalies only).
    pub history: Vec<Entry>,
}

/// The result of checking a history for linearizability.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinReport {
    /// Operations that entered the check (indeterminate ones included).
    pub ops_checked: u64,
    /// Keys checked.
    pub keys: u64,
    /// Keys whose search ran out of budget (neither proven nor refuted).
    pub inconclusive: u64,
    /// Non-linearizable keys.
    pub anomalies: Vec<Anomaly>,
}

/// Checks every key of `entries` separately (linearizability is compositional), each
/// against its model: registers against [`models::Register`], sets against
/// [`models::GrowSet`].
pub fn linearizability(entries: &[Entry], budget: wgl::Budget) -> LinReport {
    let mut by_key: BTreeMap<(char, u32), Vec<Entry>> = BTreeMap::new();
    for e in entries {
        by_key.entry(e.op.key()).or_default().push(e.clone());
    }
    let mut report = LinReport::default();
    for ((kind, key), h) in by_key {
        report.keys += 1;
        report.ops_checked += h.len() as u64;
        let (verdict, shrunk) = match kind {
            'r' => one(&models::Register, &h, budget),
            _ => one(&models::GrowSet, &h, budget),
        };
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => report.inconclusive += 1,
            Verdict::Violation => report.anomalies.push(Anomaly {
                kind: "linearizability".into(),
                detail: format!(
                    "{} {key} is not linearizable ({} ops; minimal failing history of {})",
                    if kind == 'r' { "register" } else { "set" },
                    h.len(),
                    shrunk.len()
                ),
                history: shrunk,
            }),
        }
    }
    report
}

fn one<M: Model>(model: &M, h: &[Entry], budget: wgl::Budget) -> (Verdict, Vec<Entry>) {
    match wgl::check(model, h, budget) {
        Verdict::Violation => (
            Verdict::Violation,
            wgl::shrink(
                model,
                h,
                wgl::Budget {
                    states: budget.states / 10,
                    time: budget.time / 10,
                },
                400,
                well_formed,
                removable,
            ),
        ),
        v => (v, Vec::new()),
    }
}

/// Whether the shrinker may drop `e`: reads, definite failures and set additions (a
/// set read that saw the element keeps it, through [`well_formed`]). A register write
/// that succeeded or may have stays: a later compare-and-set's success or failure
/// depends on it even when no read returned its value.
fn removable(e: &Entry) -> bool {
    use crate::history::{Op, Outcome};
    match (&e.op, &e.outcome) {
        (Op::RegCas { .. }, Outcome::Fail) => true,
        (Op::RegCas { .. }, _) => false,
        _ => true,
    }
}

/// True when `h` still explains where everything it observed came from, so a shrunk
/// history fails for the original reason, not because a needed write was cut out:
/// every value a read returned was written by some operation of `h`, every element a
/// set read returned was added, and every register version a read returned or a
/// successful compare-and-set expected was produced by a successful write of `h` (or
/// could have been, by one of its indeterminate writes).
fn well_formed(h: &[Entry]) -> bool {
    use crate::history::{Op, Outcome, Ret};
    use std::collections::{HashMap, HashSet};
    let written: HashSet<u64> = h
        .iter()
        .filter_map(|e| match e.op {
            Op::RegCas { value, .. } => Some(value),
            _ => None,
        })
        .collect();
    let added: HashSet<u32> = h
        .iter()
        .filter_map(|e| match e.op {
            Op::SetAdd { elem, .. } => Some(elem),
            _ => None,
        })
        .collect();
    let observed = h.iter().all(|e| match &e.outcome {
        Outcome::Ok(Ret::Value { value, .. }) => *value == 0 || written.contains(value),
        Outcome::Ok(Ret::Elems(v)) => v.iter().all(|x| added.contains(x)),
        _ => true,
    });
    // Per register: versions referenced but not produced by a successful write must
    // be few enough for the indeterminate writes to have produced them.
    #[derive(Default)]
    struct Versions {
        produced: HashSet<i32>,
        needed: HashSet<i32>,
        unknown: usize,
    }
    let mut regs: HashMap<u32, Versions> = HashMap::new();
    for e in h {
        match (&e.op, &e.outcome) {
            (Op::RegCas { key, expect, .. }, Outcome::Ok(Ret::Version(v))) => {
                let r = regs.entry(*key).or_default();
                r.produced.insert(*v);
                r.needed.insert(*expect);
            }
            (Op::RegCas { key, .. }, Outcome::Unknown) => {
                regs.entry(*key).or_default().unknown += 1;
            }
            (Op::RegRead { key }, Outcome::Ok(Ret::Value { version, .. })) => {
                regs.entry(*key).or_default().needed.insert(*version);
            }
            _ => {}
        }
    }
    observed
        && regs.values().all(|r| {
            r.needed
                .iter()
                .filter(|v| **v != 0 && !r.produced.contains(v))
                .count()
                <= r.unknown
        })
}

/// Self-tests of the checker on synthetic histories: it must accept what is
/// linearizable and catch what is not (the negative controls that need no cluster).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Outcome, Ret};

    fn e(client: usize, op: Op, t: (u64, Option<u64>), outcome: Outcome) -> Entry {
        Entry {
            client,
            op,
            invoke_us: t.0,
            complete_us: t.1,
            outcome,
        }
    }

    fn read(c: usize, t: (u64, u64), value: u64, version: i32) -> Entry {
        e(
            c,
            Op::RegRead { key: 0 },
            (t.0, Some(t.1)),
            Outcome::Ok(Ret::Value { value, version }),
        )
    }

    fn cas(c: usize, t: (u64, Option<u64>), value: u64, expect: i32, outcome: Outcome) -> Entry {
        e(
            c,
            Op::RegCas {
                key: 0,
                value,
                expect,
            },
            t,
            outcome,
        )
    }

    fn ok_v(v: i32) -> Outcome {
        Outcome::Ok(Ret::Version(v))
    }

    #[test]
    fn sequential_and_concurrent_register_histories_pass() {
        let h = vec![
            cas(1, (0, Some(10)), 7, 0, ok_v(1)),
            read(2, (11, 20), 7, 1),
            // Concurrent with the next write: may see either value.
            read(3, (21, 40), 0, 0).clone_with(|x| {
                x.outcome = Outcome::Ok(Ret::Value {
                    value: 9,
                    version: 2,
                })
            }),
            cas(1, (22, Some(30)), 9, 1, ok_v(2)),
            cas(2, (31, Some(35)), 5, 1, Outcome::Fail),
        ];
        let r = linearizability(&h, DEFAULT_BUDGET);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!(r.ops_checked, 5);
    }

    #[test]
    fn a_stale_read_is_caught_with_a_minimal_history() {
        let mut h = vec![
            cas(1, (0, Some(10)), 7, 0, ok_v(1)),
            // After the write completed, a read still returns the initial value.
            read(2, (20, 30), 0, 0),
        ];
        // Unrelated noise on another key, and a concurrent-but-fine read.
        h.push(e(
            4,
            Op::SetAdd { key: 3, elem: 1 },
            (1, Some(2)),
            Outcome::Ok(Ret::Done),
        ));
        h.push(read(3, (12, 18), 7, 1));
        let r = linearizability(&h, DEFAULT_BUDGET);
        assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
        let a = &r.anomalies[0];
        assert!(a.detail.contains("register 0"), "{}", a.detail);
        assert_eq!(
            a.history.len(),
            2,
            "minimal: the write and the stale read: {:?}",
            a.history
        );
    }

    #[test]
    fn an_acknowledged_write_that_vanishes_is_caught() {
        let h = vec![
            cas(1, (0, Some(10)), 7, 0, ok_v(1)),
            read(2, (20, 30), 7, 1),
            read(2, (40, 50), 0, 0),
        ];
        assert_eq!(linearizability(&h, DEFAULT_BUDGET).anomalies.len(), 1);
    }

    #[test]
    fn indeterminate_writes_may_or_may_not_happen_but_not_twice() {
        // Unknown write, seen later: fine.
        let seen = vec![
            cas(1, (0, None), 7, 0, Outcome::Unknown),
            read(2, (20, 30), 7, 1),
        ];
        assert!(linearizability(&seen, DEFAULT_BUDGET).anomalies.is_empty());
        // Unknown write, never seen: fine.
        let unseen = vec![
            cas(1, (0, None), 7, 0, Outcome::Unknown),
            read(2, (20, 30), 0, 0),
        ];
        assert!(linearizability(&unseen, DEFAULT_BUDGET)
            .anomalies
            .is_empty());
        // Seen, then gone again: not fine.
        let flicker = vec![
            cas(1, (0, None), 7, 0, Outcome::Unknown),
            read(2, (20, 30), 7, 1),
            read(2, (40, 50), 0, 0),
        ];
        assert_eq!(linearizability(&flicker, DEFAULT_BUDGET).anomalies.len(), 1);
        // An unknown write cannot take effect before it was invoked.
        let early = vec![
            read(2, (0, 10), 7, 1),
            cas(1, (20, None), 7, 0, Outcome::Unknown),
        ];
        assert_eq!(linearizability(&early, DEFAULT_BUDGET).anomalies.len(), 1);
    }

    #[test]
    fn two_successful_cas_on_the_same_version_are_caught() {
        let h = vec![
            cas(1, (0, Some(10)), 7, 0, ok_v(1)),
            cas(2, (0, Some(10)), 8, 0, ok_v(1)),
        ];
        assert_eq!(linearizability(&h, DEFAULT_BUDGET).anomalies.len(), 1);
    }

    fn add(c: usize, elem: u32, t: (u64, Option<u64>), outcome: Outcome) -> Entry {
        e(c, Op::SetAdd { key: 1, elem }, t, outcome)
    }

    fn elems(c: usize, t: (u64, u64), v: &[u32]) -> Entry {
        e(
            c,
            Op::SetRead { key: 1 },
            (t.0, Some(t.1)),
            Outcome::Ok(Ret::Elems(v.to_vec())),
        )
    }

    #[test]
    fn set_histories_pass_and_lost_elements_are_caught() {
        let good = vec![
            add(1, 1, (0, Some(10)), Outcome::Ok(Ret::Done)),
            add(2, 2, (5, Some(30)), Outcome::Ok(Ret::Done)),
            elems(3, (12, 20), &[1]),
            elems(3, (31, 40), &[1, 2]),
            add(2, 3, (32, None), Outcome::Unknown),
        ];
        assert!(linearizability(&good, DEFAULT_BUDGET).anomalies.is_empty());
        let lost = vec![
            add(1, 1, (0, Some(10)), Outcome::Ok(Ret::Done)),
            elems(3, (12, 20), &[1]),
            elems(3, (21, 30), &[]),
        ];
        assert_eq!(linearizability(&lost, DEFAULT_BUDGET).anomalies.len(), 1);
        // Two reads that disagree on order: each sees an element the other misses.
        let split = vec![
            add(1, 1, (0, Some(100)), Outcome::Ok(Ret::Done)),
            add(2, 2, (0, Some(100)), Outcome::Ok(Ret::Done)),
            elems(3, (10, 20), &[1]),
            elems(4, (10, 20), &[2]),
        ];
        assert_eq!(linearizability(&split, DEFAULT_BUDGET).anomalies.len(), 1);
    }

    #[test]
    fn the_shrunk_history_keeps_the_writes_its_reads_observed() {
        // A read sees element 2, whose add was invoked after the read (concurrent): a
        // prefix cut by invocation time before that add would "fail" on its own. The
        // real violation is later: element 1, acknowledged, vanishes.
        let h = vec![
            add(1, 1, (0, Some(10)), Outcome::Ok(Ret::Done)),
            elems(3, (20, 60), &[1, 2]),
            add(2, 2, (30, Some(40)), Outcome::Ok(Ret::Done)),
            elems(3, (70, 80), &[1, 2]),
            elems(4, (90, 95), &[2]),
        ];
        let r = linearizability(&h, DEFAULT_BUDGET);
        assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
        let shrunk = &r.anomalies[0].history;
        assert!(well_formed(shrunk), "{shrunk:?}");
        assert!(
            shrunk
                .iter()
                .any(|e| e.outcome == Outcome::Ok(Ret::Elems(vec![2]))),
            "the read that lost element 1 is the failure: {shrunk:?}"
        );
    }

    #[test]
    fn a_shrunk_register_history_keeps_the_writes_later_versions_need() {
        // Version 2 is read back as the initial value (a lost write) at the end; the
        // writes that produced versions 1 and 2 must stay in the shrunk history.
        let h = vec![
            cas(1, (0, Some(10)), 7, 0, ok_v(1)),
            cas(2, (20, Some(30)), 8, 1, ok_v(2)),
            cas(1, (40, Some(50)), 9, 2, ok_v(3)),
            read(3, (60, 70), 9, 3),
            read(3, (80, 90), 0, 0),
        ];
        let r = linearizability(&h, DEFAULT_BUDGET);
        assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
        let shrunk = &r.anomalies[0].history;
        assert!(well_formed(shrunk), "{shrunk:?}");
        assert!(
            shrunk.iter().any(|e| e.outcome
                == Outcome::Ok(Ret::Value {
                    value: 0,
                    version: 0
                })),
            "the stale read is the failure: {shrunk:?}"
        );
        // A lone CAS expecting version 2 that nothing produced is not well formed.
        assert!(!well_formed(&[cas(1, (40, Some(50)), 9, 2, ok_v(3))]));
        // ... unless an indeterminate write could have produced it.
        assert!(well_formed(&[
            cas(2, (0, None), 8, 1, Outcome::Unknown),
            cas(1, (40, Some(50)), 9, 2, ok_v(3)),
        ]));
    }

    #[test]
    fn a_concurrent_successful_cas_explains_a_failed_one_after_shrinking() {
        // Two CAS on version 1 at once: one wins, one fails (linearizable). A real
        // violation follows. The shrunk history must keep the winner, or the loser
        // would look like a violation on its own.
        let h = vec![
            cas(1, (0, Some(10)), 7, 0, ok_v(1)),
            cas(2, (20, Some(40)), 8, 1, Outcome::Fail),
            cas(3, (21, Some(35)), 9, 1, ok_v(2)),
            read(4, (50, 60), 9, 2),
            read(4, (70, 80), 7, 1),
        ];
        let r = linearizability(&h, DEFAULT_BUDGET);
        assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
        let shrunk = &r.anomalies[0].history;
        assert!(
            shrunk.iter().any(|e| e.outcome
                == Outcome::Ok(Ret::Value {
                    value: 7,
                    version: 1
                })),
            "the read going back to version 1 is the failure: {shrunk:?}"
        );
        assert!(shrunk.iter().any(|e| e.outcome == ok_v(2)), "{shrunk:?}");
    }

    trait CloneWith {
        fn clone_with(&self, f: impl FnOnce(&mut Self)) -> Self;
    }

    impl CloneWith for Entry {
        fn clone_with(&self, f: impl FnOnce(&mut Self)) -> Self {
            let mut c = self.clone();
            f(&mut c);
            c
        }
    }
}
