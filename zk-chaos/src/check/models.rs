//! The sequential specifications the histories are checked against.

use std::collections::BTreeSet;

use super::wgl::Model;
use crate::history::{Op, Outcome, Ret};

/// A znode used as a compare-and-set register: state (value, version), starting at
/// (0, 0) (the node is created with value 0 before the clients start).
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Model for Register {
    type State = (u64, i32);

    fn init(&self) -> (u64, i32) {
        (0, 0)
    }

    fn step(&self, s: &(u64, i32), op: &Op, outcome: &Outcome) -> Option<(u64, i32)> {
        match (op, outcome) {
            (Op::RegRead { .. }, Outcome::Ok(Ret::Value { value, version })) => {
                (*s == (*value, *version)).then_some(*s)
            }
            (Op::RegCas { value, expect, .. }, Outcome::Ok(Ret::Version(v))) => {
                (s.1 == *expect && *v == expect.wrapping_add(1)).then_some((*value, *v))
            }
            (Op::RegCas { expect, .. }, Outcome::Fail) => (s.1 != *expect).then_some(*s),
            (Op::RegCas { value, expect, .. }, Outcome::Unknown) => Some(if s.1 == *expect {
                (*value, expect.wrapping_add(1))
            } else {
                *s
            }),
            _ => None,
        }
    }
}

/// A grow-only set (sequential children of one znode): state the elements present.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrowSet;

impl Model for GrowSet {
    type State = BTreeSet<u32>;

    fn init(&self) -> BTreeSet<u32> {
        BTreeSet::new()
    }

    fn step(&self, s: &BTreeSet<u32>, op: &Op, outcome: &Outcome) -> Option<BTreeSet<u32>> {
        match (op, outcome) {
            (Op::SetAdd { elem, .. }, Outcome::Ok(_) | Outcome::Unknown) => {
                let mut s = s.clone();
                s.insert(*elem);
                Some(s)
            }
            (Op::SetAdd { elem, .. }, Outcome::Fail) => (!s.contains(elem)).then(|| s.clone()),
            (Op::SetRead { .. }, Outcome::Ok(Ret::Elems(e))) => {
                (s.len() == e.len() && e.iter().all(|x| s.contains(x))).then(|| s.clone())
            }
            _ => None,
        }
    }
}
