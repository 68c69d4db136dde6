//! The targets, each as a ratio against Apache ZooKeeper measured in the same
//! run (or an absolute bound), marked met / not met for each of our two protocols.

use std::fmt::Write;

use serde_json::Value;

use super::input::{Column, Results};
use super::tables::{measured, topologies, whole};

/// What a target asks of our figure `x` given Apache's `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// `x >= k * a` (throughput).
    AtLeastTimes(f64),
    /// `x <= k * a` (latency, memory, time).
    AtMostTimes(f64),
    /// `x < bound` (absolute; Apache's figure only for reference).
    Below(f64),
}

impl Rule {
    /// Whether `ours` meets the rule (None: not measured).
    pub fn met(self, ours: Option<f64>, apache: Option<f64>) -> Option<bool> {
        let x = ours?;
        match self {
            Rule::AtLeastTimes(k) => Some(x >= k * apache?),
            Rule::AtMostTimes(k) => Some(x <= k * apache?),
            Rule::Below(b) => Some(x < b),
        }
    }

    fn needed(self) -> String {
        match self {
            Rule::AtLeastTimes(k) => format!("≥ {k}x Apache"),
            Rule::AtMostTimes(k) if k < 1.0 => format!("≤ {k}x Apache"),
            Rule::AtMostTimes(k) => format!("≤ {k}x the floor"),
            Rule::Below(b) => format!("< {b}"),
        }
    }
}

/// One checked case.
#[derive(Debug, Clone)]
pub struct Check {
    pub target: &'static str,
    pub case: String,
    pub rule: Rule,
    pub native: Option<f64>,
    pub zk_proto: Option<f64>,
    /// Apache's figure, or the floor for [`Rule::AtMostTimes`] against a floor.
    pub reference: Option<f64>,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "not met",
        None => "—",
    }
}

/// Every case the run has figures for.
pub fn checks(r: &Results) -> Vec<Check> {
    let mut out = Vec::new();
    let inflights = r.distinct(|l| l.inflight);
    let load = |t: &str, col, w: &str, c, i| r.load(t, col, w, c, i);
    let mut per_load = |target,
                        rule,
                        topology: &str,
                        w: &str,
                        c: u64,
                        i: u64,
                        f: fn(&super::input::Load) -> f64| {
        let native = load(topology, Column::Native, w, c, i).map(f);
        let zk_proto = load(topology, Column::ZkProto, w, c, i).map(f);
        let apache = load(topology, Column::Apache, w, c, i).map(f);
        if native.is_some() || zk_proto.is_some() || apache.is_some() {
            out.push(Check {
                target,
                case: format!("{w}, {c} clients, inflight {i}, {topology}"),
                rule,
                native,
                zk_proto,
                reference: apache,
            });
        }
    };
    let ops = |l: &super::input::Load| l.ops_per_sec;
    let p99 = |l: &super::input::Load| l.p99_us;
    for &i in &inflights {
        for w in ["create", "set"] {
            for c in [16, 64] {
                per_load(
                    "write throughput, 3-node ensemble",
                    Rule::AtLeastTimes(2.0),
                    "ensemble",
                    w,
                    c,
                    i,
                    ops,
                );
            }
        }
    }
    for t in topologies(r) {
        for &i in &inflights {
            per_load(
                "read throughput at 64 clients",
                Rule::AtLeastTimes(2.0),
                &t,
                "get",
                64,
                i,
                ops,
            );
            per_load(
                "set p99 at 16 clients",
                Rule::AtMostTimes(0.5),
                &t,
                "set",
                16,
                i,
                p99,
            );
            for c in r.distinct(|l| l.clients) {
                per_load(
                    "watch notification p99",
                    Rule::AtMostTimes(0.5),
                    &t,
                    "watch",
                    c,
                    i,
                    p99,
                );
            }
        }
    }
    let any = |_: &Value| true;
    let rss = |s| {
        measured(
            r,
            "rss",
            s,
            |v| v.get("when").and_then(Value::as_str) == Some("built"),
            "rss_kib",
        )
        .map(|k| k / 1024.0)
    };
    out.push(Check {
        target: "RSS with the lifecycle tree (MiB)",
        case: "after building it".into(),
        rule: Rule::AtMostTimes(0.5),
        native: rss("zk-server"),
        zk_proto: None,
        reference: rss("apache-zk"),
    });
    let failover = |s: &str| {
        r.failovers
            .iter()
            .rev()
            .find(|f| f.system == s)
            .map(|f| f.p99_ms)
    };
    out.push(Check {
        target: "leader failover p99 (ms)",
        case: "kill -9 → next acknowledged write".into(),
        rule: Rule::AtMostTimes(0.5),
        native: failover("zk-server"),
        zk_proto: None,
        reference: failover("apache-zk"),
    });
    let empty_start = |s| {
        measured(
            r,
            "start",
            s,
            |v| v.get("from").and_then(Value::as_str) == Some("empty"),
            "ms",
        )
    };
    out.push(Check {
        target: "cold start (ms)",
        case: "spawn → first served read, empty data dir".into(),
        rule: Rule::Below(100.0),
        native: empty_start("zk-server"),
        zk_proto: None,
        reference: empty_start("apache-zk"),
    });
    // Durable single-client write p50 vs the floor: fsync + loopback round trip.
    let fsync = measured(r, "fsync", "zk-server", any, "p50_us").or_else(|| {
        r.measures
            .iter()
            .rev()
            .find(|v| v.get("measure").and_then(Value::as_str) == Some("fsync"))
            .and_then(|v| v.get("p50_us")?.as_f64())
    });
    let rtt = r
        .measures
        .iter()
        .rev()
        .find_map(|v| v.get("loopback_rtt_p50_us")?.as_f64());
    let floor = fsync.map(|f| f + rtt.unwrap_or(0.0));
    let p50 = |col| load("standalone", col, "set", 1, 1).map(|l| l.p50_us);
    out.push(Check {
        target: "durable 1-client write p50 (µs) vs fsync + loopback RTT",
        case: "set, 1 client, inflight 1, standalone".into(),
        rule: Rule::AtMostTimes(1.5),
        native: p50(Column::Native),
        zk_proto: p50(Column::ZkProto),
        reference: floor,
    });
    out
}

/// The targets table.
pub fn markdown(r: &Results) -> String {
    let checks = checks(r);
    let mut s = String::from("### The issue's targets\n\n| target | case | needed | ours native | ours zk-proto | Apache ZK (or floor) | native / Apache | native | zk-proto |\n|---|---|---|---:|---:|---:|---:|---|---|\n");
    for c in &checks {
        let ratio = super::tables::ratio(c.native, c.reference);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {ratio} | {} | {} |",
            c.target,
            c.case,
            c.rule.needed(),
            whole(c.native),
            whole(c.zk_proto),
            whole(c.reference),
            verdict(c.rule.met(c.native, c.reference)),
            verdict(c.rule.met(c.zk_proto, c.reference)),
        );
    }
    let met = checks
        .iter()
        .filter(|c| c.rule.met(c.native, c.reference) == Some(true))
        .count();
    let judged = checks
        .iter()
        .filter(|c| c.rule.met(c.native, c.reference).is_some())
        .count();
    let _ = writeln!(
        s,
        "\nNatively {met} of {judged} measured cases meet their target. Throughput in ops/s, latency in µs unless stated. The durable-write floor is the fsync probe's p50 in zk-server's data dir plus the loopback round trip (`zk-bench fsync`).\n"
    );
    s
}
