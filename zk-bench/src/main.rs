//! `zk-bench`: a load generator for zk-server.
//!
//! N clients (N sessions) each keep M requests in flight for a fixed time; every
//! completed request's latency goes into a histogram; the merged result is printed as
//! one JSON line (with the `target`: `native` or `zk`). Setup creates `/bench-<pid>`, cleanup deletes it.
//!
//! Subcommands: `zk-bench fsync` (the disk's durable-write floor), `zk-bench lifecycle`
//! (cold start, RSS with a big tree, snapshot and restart-recovery time, for zk-server
//! or Apache ZooKeeper), `zk-bench report` (results.jsonl -> docs/benchmarks.md tables
//! and SVG plots).
//!
//! Layout: `main.rs` (flags, setup, run, cleanup), `workloads/` (one file per workload,
//! plus the shared driver in `workloads/mod.rs`), `report.rs` (histograms and JSON),
//! `measure/` (fsync probe, server lifecycle), `summary/` (the `report` subcommand).

mod measure;
mod report;
mod summary;
mod workloads;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Load generator for zk-server and Apache ZooKeeper: without a subcommand, one load run
/// printing one JSON line with throughput and latency percentiles (microseconds); the
/// subcommands measure the rest and write the report.
///
/// Example: zk-bench --workload mixed --clients 8 --inflight 16 --duration 10
#[derive(Debug, Parser)]
#[command(
    name = "zk-bench",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: Args,
}

/// The measurements besides load runs, and the report.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The disk's fsync latency: write + fdatasync of 4 KiB appended to a temp file in
    /// --dir; prints one JSON line (p50 / p99 / max µs).
    Fsync(measure::fsync::FsyncArgs),
    /// Starts a server itself and measures cold start (empty and with data), RSS with a
    /// tree of --znodes nodes of 100 bytes, snapshot time and restart-recovery time;
    /// prints one JSON line per figure and stops the server.
    Lifecycle(measure::lifecycle::LifecycleArgs),
    /// Writes the tables (markdown, into a generated section of benchmarks.md) and SVG
    /// plots from the JSON lines of a run.
    Report(summary::ReportArgs),
}

/// The flags of one load run.
#[derive(Debug, Clone, Parser)]
pub struct Args {
    /// Which protocol the sessions speak: `native` (our client, zk-server only) or `zk`
    /// (Apache ZooKeeper's client protocol through the `zookeeper-client` crate: works
    /// against zk-server and Apache ZooKeeper alike).
    #[arg(short = 't', long, value_enum, default_value_t = Target::Native)]
    pub target: Target,
    /// Servers to connect to, `HOST:PORT[,HOST:PORT...]`.
    #[arg(short = 's', long, env = "ZK_SERVER", default_value = "127.0.0.1:2181")]
    pub server: String,
    /// What to measure: create (new nodes), set / get (on --keys existing nodes),
    /// mixed (90% get, 10% set), watch (set -> event latency), lock (handoff of one fair
    /// lock: `zk-recipes` natively, a plain sequential-ephemeral lock over `--target zk`).
    #[arg(short = 'w', long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Number of client sessions. For `watch`: the number of watching sessions.
    #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Requests each client keeps in flight. For `watch`: the number of watched nodes,
    /// each with its own writer. For `lock`: contenders per client session.
    #[arg(short = 'i', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub inflight: u32,
    /// Measured seconds (after the warmup).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Bytes of data per create / set.
    #[arg(short = 'b', long, default_value_t = 100)]
    pub value_size: usize,
    /// Seconds run before measuring starts (not counted).
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Number of pre-created keys for set / get / mixed.
    #[arg(short = 'k', long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub keys: u32,
    /// Connect over TLS, trusting this CA (PEM); `--target native` only.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    Create,
    Set,
    Get,
    Mixed,
    Watch,
    /// Lock handoff: every client contends for one fair lock (acquire -> release is one
    /// op, its latency the acquire wait).
    Lock,
}

/// The protocol a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// zk-server's native protocol (`zk-client`).
    Native,
    /// Apache ZooKeeper's client protocol (`zookeeper-client` crate).
    Zk,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Native => "native",
            Target::Zk => "zk",
        }
    }
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::Watch => "watch",
            Workload::Lock => "lock",
        }
    }
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("bad --{name} {v}: want seconds >= 0"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        None => cli.run,
        Some(Command::Report(r)) => return finish(summary::run(&r)),
        Some(Command::Fsync(f)) => return finish(measure::fsync::run(&f)),
        Some(Command::Lifecycle(l)) => return with_runtime(measure::lifecycle::run(l)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the lines of a subcommand, or its error.
fn finish(result: Result<Vec<String>, String>) -> ExitCode {
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an async subcommand (it prints its lines as it goes) on a fresh runtime.
fn with_runtime(fut: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|rt| rt.block_on(fut));
    finish(result.map(|()| Vec::new()))
}

async fn run(args: Args) -> Result<String, String> {
    let duration = seconds("duration", args.duration)?;
    let warmup = seconds("warmup", args.warmup)?;
    if duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    let plan = workloads::Plan {
        target: args.target,
        server: args.server.clone(),
        clients: args.clients as usize,
        inflight: args.inflight as usize,
        value_size: args.value_size,
        keys: args.keys as usize,
        warmup,
        duration,
        root: format!("/bench-{}", std::process::id()),
        tls: match &args.tls_ca {
            Some(ca) => Some(zk_client::TlsOptions::from_ca_file(ca).map_err(|e| e.to_string())?),
            None => None,
        },
    };
    let admin = workloads::connect(plan.target, &plan.server, plan.tls.clone()).await?;
    let result = async {
        workloads::setup_root(&admin, &plan).await?;
        workloads::run(args.workload, &admin, &plan).await
    }
    .await;
    let cleanup = workloads::cleanup(&admin, &plan.root).await;
    admin.close().await;
    let stats = result?;
    if let Err(e) = cleanup {
        eprintln!("warning: cleanup of {} failed: {e}", plan.root);
    }
    Ok(report::json_line(&args, &stats))
}
