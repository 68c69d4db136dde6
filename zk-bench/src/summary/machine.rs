//! Machine facts for the report (read where the report runs: run it on the benchmark
//! machine) and the run's fsync probes.

use std::fmt::Write;

use serde_json::Value;

use super::input::Results;

fn first_line_value(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `(name, value)` facts of this machine: CPUs, CPU model, memory, kernel, date.
pub fn facts() -> Vec<(String, String)> {
    let mut f = Vec::new();
    if let Ok(n) = std::thread::available_parallelism() {
        f.push(("CPUs (nproc)".into(), n.to_string()));
    }
    if let Some(m) = first_line_value("/proc/cpuinfo", "model name") {
        f.push(("CPU model".into(), m));
    }
    if let Some(kib) = first_line_value("/proc/meminfo", "MemTotal")
        .and_then(|m| m.split_whitespace().next()?.parse::<f64>().ok())
    {
        f.push(("memory".into(), format!("{:.1} GiB", kib / 1024.0 / 1024.0)));
    }
    if let Ok(k) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        f.push(("kernel".into(), format!("Linux {}", k.trim())));
    }
    if let Ok(out) = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
    {
        let d = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !d.is_empty() {
            f.push(("report written".into(), d));
        }
    }
    f
}

/// The facts and every fsync probe of the run, as markdown.
pub fn markdown(facts: &[(String, String)], results: &Results) -> String {
    let mut s = String::from("### Machine\n\n");
    for (k, v) in facts {
        let _ = writeln!(s, "- {k}: {v}");
    }
    for v in results
        .measures
        .iter()
        .filter(|v| v.get("measure").and_then(Value::as_str) == Some("fsync"))
    {
        let get = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let when = v
            .get("system")
            .or_else(|| v.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or("run");
        let rtt = v
            .get("loopback_rtt_p50_us")
            .and_then(Value::as_u64)
            .map(|r| format!(", loopback round trip p50 {r} µs"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "- fsync probe ({when}): 4 KiB append + fdatasync p50 {} µs, p99 {} µs, max {} µs over {} writes{rtt}",
            get("p50_us"),
            get("p99_us"),
            get("max_us"),
            get("count"),
        );
    }
    s.push('\n');
    s
}
