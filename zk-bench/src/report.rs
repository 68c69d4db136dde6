//! Statistics: per-client latency histograms, merged, and the one JSON line.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::Args;

/// Latencies are recorded in microseconds, 1 µs .. 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

/// What one client (or the whole run, once merged) measured.
#[derive(Debug, Clone)]
pub struct Stats {
    pub latency_us: Histogram<u64>,
    pub ops: u64,
    pub errors: u64,
    /// The measured time actually elapsed, in seconds.
    pub elapsed_s: f64,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            latency_us: new_histogram(),
            ops: 0,
            errors: 0,
            elapsed_s: 0.0,
        }
    }

    /// Records one successful op.
    pub fn record(&mut self, latency: std::time::Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency_us.saturating_record(us);
        self.ops += 1;
    }

    /// Adds another client's numbers.
    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides, so adding cannot fail; saturate just in case.
        if self.latency_us.add(&other.latency_us).is_err() {
            for v in other.latency_us.iter_recorded() {
                self.latency_us
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.ops += other.ops;
        self.errors += other.errors;
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
    }
}

/// The result line, fields in this order.
#[derive(Debug, Serialize)]
struct Report {
    workload: &'static str,
    clients: u32,
    inflight: u32,
    duration_s: f64,
    value_size: usize,
    ops: u64,
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    errors: u64,
    target: &'static str,
    /// The latency distribution: `[percentile, µs]` pairs at [`CDF_PERCENTILES`] (enough
    /// to draw a CDF plot).
    cdf: Vec<(f64, u64)>,
}

/// The percentiles stored in each result line's `cdf` (0 = min, 100 = max).
pub const CDF_PERCENTILES: [f64; 22] = [
    0.0, 1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.5,
    99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

/// `[percentile, µs]` for each of [`CDF_PERCENTILES`] (empty for an empty histogram).
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    CDF_PERCENTILES
        .iter()
        .map(|&p| {
            let us = match p {
                0.0 => h.min(),
                100.0 => h.max(),
                p => h.value_at_quantile(p / 100.0),
            };
            (p, us)
        })
        .collect()
}

/// The result line: `{"workload","clients","inflight","duration_s","value_size","ops",
/// "ops_per_sec","p50_us","p99_us","p999_us","max_us","errors","target","cdf"}`.
pub fn json_line(args: &Args, stats: &Stats) -> String {
    let h = &stats.latency_us;
    let (p50_us, p99_us, p999_us, max_us) = if h.is_empty() {
        (0, 0, 0, 0)
    } else {
        (
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
        )
    };
    let ops_per_sec = if stats.elapsed_s > 0.0 {
        (stats.ops as f64 / stats.elapsed_s * 10.0).round() / 10.0
    } else {
        0.0
    };
    let report = Report {
        workload: args.workload.name(),
        clients: args.clients,
        inflight: args.inflight,
        duration_s: (stats.elapsed_s * 1000.0).round() / 1000.0,
        value_size: args.value_size,
        ops: stats.ops,
        ops_per_sec,
        p50_us,
        p99_us,
        p999_us,
        max_us,
        errors: stats.errors,
        target: args.target.name(),
        cdf: cdf(h),
    };
    serde_json::to_string(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn merges_and_reports() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for i in 1..=99 {
            a.record(Duration::from_micros(i * 10));
        }
        b.record(Duration::from_millis(50));
        b.errors = 2;
        a.elapsed_s = 2.0;
        b.elapsed_s = 1.9;
        a.merge(&b);
        assert_eq!(a.ops, 100);
        let args = Args::parse_from(["zk-bench", "--workload", "get", "--clients", "2"]);
        let text = json_line(&args, &a);
        assert!(
            text.starts_with(r#"{"workload":"get","clients":2,"inflight":1,"#),
            "{text}"
        );
        let line: serde_json::Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(line["workload"], "get");
        assert_eq!(line["ops"], 100);
        assert_eq!(line["ops_per_sec"], 50.0);
        assert_eq!(line["errors"], 2);
        assert_eq!(line["target"], "native");
        assert!(line["max_us"].as_u64().expect("max") >= 49_000);
        let p50 = line["p50_us"].as_u64().expect("p50");
        assert!((490..=510).contains(&p50), "{p50}");
        let cdf = line["cdf"].as_array().expect("cdf");
        assert_eq!(cdf.len(), CDF_PERCENTILES.len());
        let points: Vec<(f64, u64)> = cdf
            .iter()
            .map(|pair| {
                (
                    pair[0].as_f64().expect("percentile"),
                    pair[1].as_u64().expect("µs"),
                )
            })
            .collect();
        assert_eq!(points[0], (0.0, 10));
        assert_eq!(points.last().map(|p| p.1), line["max_us"].as_u64());
        assert!(points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        for key in [
            "clients",
            "inflight",
            "duration_s",
            "value_size",
            "p99_us",
            "p999_us",
        ] {
            assert!(line.get(key).is_some(), "{key}");
        }
    }
}
