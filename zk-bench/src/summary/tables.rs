//! Markdown tables: load runs side by side (per topology and inflight), the lifecycle
//! measurements, leader failover.

use std::fmt::Write;

use serde_json::Value;

use super::input::{workload_rank, Column, Results};

/// `a / b` as `1.23x`, or `—` when either is missing or `b` is 0.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => format!("{:.2}x", a / b),
        _ => "—".into(),
    }
}

/// A whole number, or `—`.
pub fn whole(v: Option<f64>) -> String {
    v.map(|v| format!("{}", v.round() as i64))
        .unwrap_or_else(|| "—".into())
}

/// One decimal, or `—`.
pub fn one_decimal(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into())
}

/// Topologies in table order: standalone first.
pub fn topologies(results: &Results) -> Vec<String> {
    let mut t = results.distinct(|l| l.topology.clone());
    t.sort_by_key(|t| (t != "standalone", t.clone()));
    t
}

/// One table per (topology, inflight): every workload x clients, the three columns.
pub fn load_tables(results: &Results) -> String {
    let mut s = String::new();
    for topology in topologies(results) {
        for inflight in results.distinct(|l| l.inflight) {
            let mut rows: Vec<(String, u64)> = results
                .loads
                .iter()
                .filter(|l| l.topology == topology && l.inflight == inflight)
                .map(|l| (l.workload.clone(), l.clients))
                .collect();
            rows.sort_by_key(|(w, c)| (workload_rank(w), w.clone(), *c));
            rows.dedup();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "### Load: {topology}, inflight {inflight}\n");
            s.push_str("| workload | clients | ours native ops/s | ours zk-proto ops/s | Apache ZK ops/s | native / Apache | zk-proto / Apache | p99 µs native | p99 µs zk-proto | p99 µs Apache | p99 Apache / native | errors |\n");
            s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for (w, c) in rows {
                let get = |col| results.load(&topology, col, &w, c, inflight);
                let ops = |col| get(col).map(|l| l.ops_per_sec);
                let p99 = |col| get(col).map(|l| l.p99_us);
                let errors: u64 = Column::ALL
                    .iter()
                    .filter_map(|&col| get(col).map(|l| l.errors))
                    .sum();
                let failed = results.loads.iter().any(|l| {
                    l.failed
                        && l.topology == topology
                        && l.workload == w
                        && l.clients == c
                        && l.inflight == inflight
                });
                let _ = writeln!(
                    s,
                    "| {w} | {c} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {errors}{} |",
                    whole(ops(Column::Native)),
                    whole(ops(Column::ZkProto)),
                    whole(ops(Column::Apache)),
                    ratio(ops(Column::Native), ops(Column::Apache)),
                    ratio(ops(Column::ZkProto), ops(Column::Apache)),
                    whole(p99(Column::Native)),
                    whole(p99(Column::ZkProto)),
                    whole(p99(Column::Apache)),
                    ratio(p99(Column::Apache), p99(Column::Native)),
                    if failed { " (a run failed)" } else { "" },
                );
            }
            s.push('\n');
        }
    }
    if !s.is_empty() {
        s.push_str("Ratios: ours / Apache for ops/s (above 1: we are faster), Apache / ours for p99 (above 1: our p99 is lower). `watch`: set → event latency, events/s; `lock`: one fair lock, acquire → release per op, latency = acquire wait.\n\n");
    }
    s
}

fn field(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// The last line of `measure` for `system` matching `pred`, its `key`.
pub fn measured(
    results: &Results,
    measure: &str,
    system: &str,
    pred: impl Fn(&Value) -> bool,
    key: &str,
) -> Option<f64> {
    results
        .measured(measure, system)
        .filter(|v| pred(v))
        .last()
        .and_then(|v| field(v, key))
}

fn is(key: &'static str, want: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v.get(key).and_then(Value::as_str) == Some(want)
}

/// Cold start, snapshot, recovery, RSS, tree build, fsync: ours vs Apache.
pub fn lifecycle_table(results: &Results) -> String {
    if results.measures.is_empty() {
        return String::new();
    }
    let znodes = results
        .measures
        .iter()
        .filter_map(|v| v.get("znodes").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    let any = |_: &Value| true;
    type Row<'a> = (&'a str, Box<dyn Fn(&str) -> Option<f64> + 'a>, bool);
    let rows: Vec<Row> = vec![
        (
            "cold start, empty, spawn → first served read (ms)",
            Box::new(|s| measured(results, "start", s, is("from", "empty"), "ms")),
            true,
        ),
        (
            "restart with the tree, ours from its log only, Apache from snapshots + log (ms)",
            Box::new(|s| {
                measured(
                    results,
                    "start",
                    s,
                    |v| {
                        v.get("from").and_then(Value::as_str) != Some("empty")
                            && v.get("from").and_then(Value::as_str) != Some("snapshot")
                    },
                    "ms",
                )
            }),
            true,
        ),
        (
            "restart with the tree from a snapshot (ms)",
            Box::new(|s| measured(results, "start", s, is("from", "snapshot"), "ms")),
            true,
        ),
        (
            "snapshot of the tree (ms)",
            Box::new(|s| measured(results, "snapshot", s, any, "ms")),
            true,
        ),
        (
            "RSS with the tree, after building it (MiB)",
            Box::new(|s| {
                measured(results, "rss", s, is("when", "built"), "rss_kib").map(|k| k / 1024.0)
            }),
            true,
        ),
        (
            "RSS with the tree, after a restart (MiB)",
            Box::new(|s| {
                measured(results, "rss", s, is("when", "recovered"), "rss_kib").map(|k| k / 1024.0)
            }),
            true,
        ),
        (
            "building the tree, pipelined creates/s",
            Box::new(|s| measured(results, "build", s, any, "creates_per_sec")),
            false,
        ),
        (
            "fsync probe in its data dir, p50 (µs)",
            Box::new(|s| measured(results, "fsync", s, any, "p50_us")),
            true,
        ),
        (
            "fsync probe in its data dir, p99 (µs)",
            Box::new(|s| measured(results, "fsync", s, any, "p99_us")),
            true,
        ),
    ];
    let mut s = format!("### Server lifecycle, tree of {znodes} znodes\n\n");
    s.push_str("| measure | zk-server | Apache ZK | ours better by |\n|---|---:|---:|---:|\n");
    for (name, get, lower_is_better) in &rows {
        let (ours, apache) = (get("zk-server"), get("apache-zk"));
        let better = if *lower_is_better {
            ratio(apache, ours)
        } else {
            ratio(ours, apache)
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {better} |",
            one_decimal(ours),
            one_decimal(apache)
        );
    }
    s.push_str("\nOurs is measured through the native protocol, Apache through the ZooKeeper protocol; \"ours better by\" above 1 means ours is faster / smaller. zk-server's snapshot: one write → the snapshot covering it is on disk (restarted with `--snapshot-every 1`); Apache's: its own `zk_max_snapshottime` (the snapshot it takes of the loaded tree at startup). Apache's RSS is bounded by its JVM heap limit (`ZK_HEAP_MB`, default 1000 MiB, upstream's default) and moves with garbage collection.\n\n");
    s
}

/// `zk-failover` summaries.
pub fn failover_table(results: &Results) -> String {
    if results.failovers.is_empty() {
        return String::new();
    }
    let mut s = String::from("### Leader failover, 3 servers (kill -9 of the leader → next acknowledged write)\n\n| system | trials | p50 ms | p99 ms | max ms | min ms |\n|---|---:|---:|---:|---:|---:|\n");
    for f in &results.failovers {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f.system, f.trials, f.p50_ms, f.p99_ms, f.max_ms, f.min_ms
        );
    }
    s.push('\n');
    s
}
