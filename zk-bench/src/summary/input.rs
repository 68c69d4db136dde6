//! The result lines of a run, typed: load runs ([`Load`]), lifecycle / fsync
//! measurements (kept as JSON), failover summaries ([`Failover`]). Unknown lines are
//! skipped, so a results file can hold anything else too.

use serde_json::Value;

/// The three columns compared side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    /// zk-server through its native protocol.
    Native,
    /// zk-server through the ZooKeeper protocol.
    ZkProto,
    /// Apache ZooKeeper (ZooKeeper protocol).
    Apache,
}

impl Column {
    pub const ALL: [Column; 3] = [Column::Native, Column::ZkProto, Column::Apache];

    pub fn label(self) -> &'static str {
        match self {
            Column::Native => "ours native",
            Column::ZkProto => "ours zk-proto",
            Column::Apache => "Apache ZK",
        }
    }
}

/// One `zk-bench` load run.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub topology: String,
    pub column: Column,
    pub workload: String,
    pub clients: u64,
    pub inflight: u64,
    /// True when the run failed (no figures).
    pub failed: bool,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
    /// `(percentile, µs)` pairs.
    pub cdf: Vec<(f64, f64)>,
}

/// One `zk-failover` summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct Failover {
    pub system: String,
    pub trials: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub min_ms: f64,
}

/// Everything one run printed.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub loads: Vec<Load>,
    /// `zk-bench lifecycle` / `fsync` lines (`"measure"` set).
    pub measures: Vec<Value>,
    pub failovers: Vec<Failover>,
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn int(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

impl Results {
    /// Parses JSON lines; lines that are not results are skipped.
    pub fn parse(input: &str) -> Results {
        let mut r = Results::default();
        for line in input.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            if v.get("measure").is_some() {
                r.measures.push(v);
            } else if v.get("summary").and_then(Value::as_str) == Some("failover") {
                r.failovers.push(Failover {
                    system: text(&v, "system").unwrap_or_default(),
                    trials: int(&v, "trials"),
                    p50_ms: num(&v, "p50_ms"),
                    p99_ms: num(&v, "p99_ms"),
                    max_ms: num(&v, "max_ms"),
                    min_ms: num(&v, "min_ms"),
                });
            } else if let Some(load) = Load::from_json(&v) {
                r.loads.push(load);
            }
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.loads.is_empty() && self.measures.is_empty() && self.failovers.is_empty()
    }

    /// The load run for these coordinates, if any (the last one wins).
    pub fn load(
        &self,
        topology: &str,
        column: Column,
        workload: &str,
        clients: u64,
        inflight: u64,
    ) -> Option<&Load> {
        self.loads.iter().rev().find(|l| {
            l.topology == topology
                && l.column == column
                && l.workload == workload
                && l.clients == clients
                && l.inflight == inflight
                && !l.failed
        })
    }

    /// The distinct values of `f` over the load runs, sorted.
    pub fn distinct<T: Ord + Clone>(&self, f: impl Fn(&Load) -> T) -> Vec<T> {
        let mut v: Vec<T> = self.loads.iter().map(f).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The measurement lines of one kind for one system (`zk-server`, `apache-zk`).
    pub fn measured<'a>(
        &'a self,
        measure: &'a str,
        system: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.measures.iter().filter(move |m| {
            m.get("measure").and_then(Value::as_str) == Some(measure)
                && m.get("system").and_then(Value::as_str) == Some(system)
        })
    }
}

/// Workloads in the order tables list them.
pub const WORKLOAD_ORDER: [&str; 6] = ["create", "set", "get", "mixed", "watch", "lock"];

/// Sort key of a workload name (unknown ones last).
pub fn workload_rank(w: &str) -> usize {
    WORKLOAD_ORDER
        .iter()
        .position(|x| *x == w)
        .unwrap_or(WORKLOAD_ORDER.len())
}

impl Load {
    fn from_json(v: &Value) -> Option<Load> {
        let workload = text(v, "workload")?;
        let target = text(v, "target").unwrap_or_else(|| "native".into());
        let server = text(v, "server").unwrap_or_else(|| "zk-server".into());
        let column = match (server.as_str(), target.as_str()) {
            ("apache-zk", _) => Column::Apache,
            (_, "zk") => Column::ZkProto,
            _ => Column::Native,
        };
        let cdf = v
            .get("cdf")
            .and_then(Value::as_array)
            .map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Load {
            topology: text(v, "topology").unwrap_or_else(|| "standalone".into()),
            column,
            workload,
            clients: int(v, "clients"),
            inflight: int(v, "inflight"),
            failed: v.get("failed").and_then(Value::as_bool).unwrap_or(false),
            ops_per_sec: num(v, "ops_per_sec"),
            p50_us: num(v, "p50_us"),
            p99_us: num(v, "p99_us"),
            errors: int(v, "errors"),
            cdf,
        })
    }
}
