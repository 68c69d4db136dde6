//! A linearizability checker: the Wing–Gong search with Lowe's memoisation (as in
//! porcupine), over a history of one key.
//!
//! The search linearizes, one by one, operations that may go next (invoked before the
//! earliest completion among those not linearized yet), applying each to a sequential
//! [`Model`]; it backtracks when the model rejects one; it never visits the same (set of
//! linearized operations, model state) twice. Indeterminate operations (complete "never")
//! are optional: the history is linearizable when every *completed* operation is
//! linearized, whether or not the indeterminate ones took effect.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::history::{Entry, Op, Outcome};

/// A sequential specification of one object.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `op` ended with `outcome` in `state`, or `None` when that outcome
    /// is impossible there. For [`Outcome::Unknown`]: the state if it took effect.
    fn step(&self, state: &Self::State, op: &Op, outcome: &Outcome) -> Option<Self::State>;
}

/// The checker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, consistent with real time, satisfies the model.
    Linearizable,
    /// No order does: an anomaly.
    Violation,
    /// The search ran out of its step budget without an answer.
    Inconclusive,
}

/// How much search one check may do before it gives up as inconclusive.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Search states visited.
    pub states: u64,
    /// Wall-clock time.
    pub time: Duration,
}

/// A fixed-size bit set of linearized operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn with(&self, i: usize) -> Bits {
        let mut b = self.clone();
        b.0[i / 64] |= 1 << (i % 64);
        b
    }
}

/// Checks `entries` (one key's history) against `model` within `budget`.
pub fn check<M: Model>(model: &M, entries: &[Entry], budget: Budget) -> Verdict {
    let started = Instant::now();
    // Elements some set read returned: an indeterminate add of one of them did happen
    // (it must be linearized); an indeterminate add nobody ever saw is invisible either
    // way (dropping it changes nothing a read could tell).
    let observed: HashSet<u32> = entries
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::Ok(crate::history::Ret::Elems(v)) => Some(v.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    // Indeterminate operations that cannot change anything (reads) constrain nothing.
    let mut ops: Vec<&Entry> = entries
        .iter()
        .filter(|e| !(e.outcome == Outcome::Unknown && is_read(&e.op)))
        .filter(|e| match (&e.op, &e.outcome) {
            (Op::SetAdd { elem, .. }, Outcome::Unknown) => observed.contains(elem),
            _ => true,
        })
        .collect();
    ops.sort_by_key(|e| e.invoke_us);
    let n = ops.len();
    let required: Vec<bool> = ops
        .iter()
        .map(|e| e.complete_us.is_some() || matches!(e.op, Op::SetAdd { .. }))
        .collect();
    let n_required = required.iter().filter(|r| **r).count();

    struct Frame<S> {
        state: S,
        bits: Bits,
        done: usize,
        cursor: usize,
    }
    let mut visited: HashSet<(Bits, M::State)> = HashSet::new();
    let mut stack = vec![Frame {
        state: model.init(),
        bits: Bits::new(n),
        done: 0,
        cursor: 0,
    }];
    let mut steps = 0u64;
    while let Some(top) = stack.last_mut() {
        if top.done == n_required {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget.states || (steps & 1023 == 0 && started.elapsed() > budget.time) {
            return Verdict::Inconclusive;
        }
        // The earliest completion among the operations not linearized yet: nothing
        // invoked after it may go before it.
        let min_complete = (0..n)
            .filter(|&i| required[i] && !top.bits.get(i))
            .filter_map(|i| ops[i].complete_us)
            .min()
            .unwrap_or(u64::MAX);
        let mut next = None;
        while top.cursor < n {
            let i = top.cursor;
            top.cursor += 1;
            if ops[i].invoke_us > min_complete {
                top.cursor = n;
                break;
            }
            if top.bits.get(i) {
                continue;
            }
            let Some(state) = model.step(&top.state, &ops[i].op, &ops[i].outcome) else {
                continue;
            };
            if !required[i] && state == top.state {
                continue; // an optional no-op: skipping it is the same
            }
            let bits = top.bits.with(i);
            if visited.insert((bits.clone(), state.clone())) {
                next = Some(Frame {
                    state,
                    bits,
                    done: top.done + usize::from(required[i]),
                    cursor: 0,
                });
                break;
            }
        }
        match next {
            Some(f) => stack.push(f),
            None => {
                stack.pop();
            }
        }
    }
    Verdict::Violation
}

fn is_read(op: &Op) -> bool {
    matches!(op, Op::RegRead { .. } | Op::SetRead { .. })
}

/// A small sub-history that is still not linearizable, found without inventing a
/// failure the original did not have: first the shortest failing prefix (by invocation)
/// that is *closed* (every later entry was invoked after every completed entry of the
/// prefix, so no later entry can explain a kept outcome) and `well_formed`; then every
/// entry that `removable` allows to drop (one whose absence cannot make the rest fail on
/// its own: a read, a definite failure, ...) and whose removal keeps it failing and well
/// formed, removed. Stops after `max_checks` checks (the result is then failing, if
/// not minimal).
pub fn shrink<M: Model>(
    model: &M,
    entries: &[Entry],
    budget: Budget,
    max_checks: usize,
    well_formed: impl Fn(&[Entry]) -> bool,
    removable: impl Fn(&Entry) -> bool,
) -> Vec<Entry> {
    let started = Instant::now();
    let mut sorted: Vec<Entry> = entries.to_vec();
    sorted.sort_by_key(|e| e.invoke_us);
    let fails = |h: &[Entry]| check(model, h, budget) == Verdict::Violation;
    let mut checks = 0usize;
    // The whole shrink gets ten times one check's time.
    let max_checks = if budget.time.is_zero() { 0 } else { max_checks };
    let out_of_time = || started.elapsed() > budget.time * 10;
    let mut len = sorted.len();
    let mut last_completion = 0u64;
    for l in 1..=sorted.len() {
        if let Some(c) = sorted[l - 1].complete_us {
            last_completion = last_completion.max(c);
        }
        let closed = sorted
            .get(l)
            .is_none_or(|next| next.invoke_us > last_completion);
        if !closed || !well_formed(&sorted[..l]) {
            continue;
        }
        checks += 1;
        if checks > max_checks || out_of_time() {
            break;
        }
        if fails(&sorted[..l]) {
            len = l;
            break;
        }
    }
    let mut h: Vec<Entry> = sorted[..len].to_vec();
    let mut i = 0;
    while i < h.len() && checks < max_checks && !out_of_time() {
        if !removable(&h[i]) {
            i += 1;
            continue;
        }
        let mut without = h.clone();
        without.remove(i);
        checks += 1;
        if well_formed(&without) && fails(&without) {
            h = without;
        } else {
            i += 1;
        }
    }
    h
}
