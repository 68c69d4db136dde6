//! `zk-sim`: deterministic simulation of a zk-server ensemble with turmoil.
//!
//! One seed ([`run::run_seed`]) starts three real nodes, each through
//! [`zk_server::run`] inside its own turmoil host, on turmoil's simulated network and
//! disk (zk-server's `simulation` feature), and a client host running zk-chaos's workload
//! (compare-and-set registers, grow-only sets, lock-protected increments on a fenced
//! resource, all through zk-client and zk-recipes). The [`nemesis`] injects a seeded
//! schedule of partitions, crashes and restarts (a crash keeps only what each disk had
//! fsynced), latency spikes and failing links. After healing, every replica is read and
//! zk-chaos's checkers run: linearizability per key, durability of every acknowledged
//! write on every replica, lock safety (fencing tokens monotone, no lost increment).
//!
//! The binary `zk-sim --seeds N --start S` runs many seeds; `tests/simulation.rs` runs
//! a CI-sized batch, the replay check, and the negative controls.

pub mod nemesis;
pub mod run;

pub use run::{run_seed, SeedReport, SimOptions};
