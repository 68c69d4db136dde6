//! `zk-chaos`: fault testing with a checker, Jepsen-style, on loopback.
//!
//! A run ([`run::run`]) starts a real ensemble of `zk-server` processes ([`cluster`])
//! with a fault-injecting [`proxy`] on every peer and client link, runs concurrent
//! clients ([`workload`]) that record a [`history`] while the [`nemesis`] injects faults
//! on a seeded schedule (kill -9, SIGSTOP, partitions, delays, dropped connections, a
//! wiped data dir), heals, reads every replica directly ([`replicas`]), and checks
//! ([`check`]): linearizability per key (Wing–Gong search with memoisation;
//! indeterminate operations may or may not have happened), lock safety on a fenced
//! resource, and durability of every acknowledged write on every replica.
//! [`scenario`] holds directed scenarios, among them the negative control that shows
//! the lock-safety check failing on an unfenced lock.
//!
//! The binary `zk-chaos` wraps [`run::run`] and ends with one JSON line
//! ([`run::Report`]); the `tests` package runs a short seeded version.

pub mod check;
pub mod cluster;
pub mod error;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod replicas;
pub mod run;
pub mod scenario;
pub mod server_bin;
pub mod workload;

pub use error::ChaosError;
