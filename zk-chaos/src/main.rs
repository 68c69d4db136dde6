//! `zk-chaos`: runs a real ensemble under faults with concurrent clients, checks the
//! history, and ends with one JSON line of figures. See `zk-chaos --help` and
//! docs/reliability.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use zk_chaos::run::{self, RunOptions};
use zk_chaos::workload::LockMode;

/// Fault testing with a linearizability checker on a real zk-server ensemble (loopback).
#[derive(Debug, Parser)]
#[command(name = "zk-chaos", version)]
struct Args {
    /// How long the clients and the faults run: `90`, `60s`, `10m`, `1h`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of the fault schedule and the clients' choices [default: from the clock]
    #[arg(long)]
    seed: Option<u64>,
    /// Voting members: 3 or 5.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The zk-server binary [default: the sibling of this executable, built with
    /// `cargo build -p zk-server` (same profile) when run by cargo or missing]
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Register (compare-and-set) clients.
    #[arg(long, default_value_t = 4)]
    register_clients: usize,
    /// Set (sequential create / read children) clients.
    #[arg(long, default_value_t = 3)]
    set_clients: usize,
    /// Lock-protected increment clients.
    #[arg(long, default_value_t = 3)]
    lock_clients: usize,
    /// Negative control: lock holders write without fencing (expect anomalies under
    /// faults that depose a holder).
    #[arg(long)]
    unfenced: bool,
    /// Run without faults (a baseline).
    #[arg(long)]
    no_faults: bool,
    /// Keep the data dirs and server logs (the path is printed).
    #[arg(long)]
    keep: bool,
    /// Write the recorded history here, one JSON entry per line.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Check a history written by `--history` (or saved after an anomaly) again and
    /// print its anomalies with minimal failing histories; runs no cluster.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["history", "seed"])]
    check_history: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("zk_chaos=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(path) = &args.check_history {
        return recheck(path);
    }
    if args.nodes != 3 && args.nodes != 5 {
        eprintln!("zk-chaos: --nodes must be 3 or 5");
        return ExitCode::from(2);
    }
    let server_bin = match zk_chaos::server_bin::locate(args.server_bin.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zk-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut o = RunOptions::new(seed, args.duration, server_bin);
    o.nodes = args.nodes;
    o.register_clients = args.register_clients;
    o.set_clients = args.set_clients;
    o.lock_clients = args.lock_clients;
    o.faults = !args.no_faults;
    o.keep_dir = args.keep;
    if args.unfenced {
        o.lock_mode = LockMode::Unfenced;
    }
    eprintln!(
        "zk-chaos: seed {seed}, {} nodes, {:?}, server {}",
        o.nodes,
        o.duration,
        o.server_bin.display()
    );
    // Ctrl-C drops the run: the cluster's processes are killed on drop.
    let result = tokio::select! {
        r = run::run(&o) => r,
        _ = interrupted() => {
            eprintln!("zk-chaos: interrupted; servers stopped");
            return ExitCode::from(130);
        }
    };
    match result {
        Ok(out) => {
            for line in &out.nemesis.timeline {
                eprintln!("  {line}");
            }
            for a in &out.anomalies {
                eprintln!("ANOMALY ({}): {} [seed {seed}]", a.kind, a.detail);
                for e in &a.history {
                    eprintln!("    {}", serde_json::to_string(e).unwrap_or_default());
                }
            }
            // After an anomaly the history is always saved, so it can be studied and
            // re-checked (`--check-history`) even when the timing does not repeat.
            let saved = args.history.clone().or_else(|| {
                (!out.anomalies.is_empty())
                    .then(|| std::env::temp_dir().join(format!("zk-chaos-{seed}-history.jsonl")))
            });
            if let Some(path) = &saved {
                let lines: Vec<String> = out
                    .history
                    .iter()
                    .filter_map(|e| serde_json::to_string(e).ok())
                    .collect();
                match std::fs::write(path, lines.join("\n")) {
                    Ok(()) => eprintln!("zk-chaos: history written to {}", path.display()),
                    Err(e) => eprintln!("zk-chaos: cannot write {}: {e}", path.display()),
                }
            }
            if let Some(d) = &out.kept_dir {
                eprintln!(
                    "zk-chaos: data dirs and server logs kept in {}",
                    d.display()
                );
            }
            println!("{}", out.report.json());
            if out.report.anomalies == 0 && out.report.acked_writes_lost == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("zk-chaos: {e} [seed {seed}]");
            ExitCode::from(2)
        }
    }
}

/// `--check-history`: the linearizability check of a saved history, as at the end of a run.
fn recheck(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zk-chaos: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let mut entries = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<zk_chaos::history::Entry>(line) {
            Ok(e) => entries.push(e),
            Err(e) => {
                eprintln!(
                    "zk-chaos: {}:{}: not a history entry: {e}",
                    path.display(),
                    n + 1
                );
                return ExitCode::from(2);
            }
        }
    }
    let report = zk_chaos::check::linearizability(&entries, zk_chaos::check::DEFAULT_BUDGET);
    for a in &report.anomalies {
        eprintln!("ANOMALY ({}): {}", a.kind, a.detail);
        for e in &a.history {
            eprintln!("    {}", serde_json::to_string(e).unwrap_or_default());
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "ops_checked": report.ops_checked,
            "keys_checked": report.keys,
            "keys_inconclusive": report.inconclusive,
            "anomalies": report.anomalies.len(),
        })
    );
    if report.anomalies.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
