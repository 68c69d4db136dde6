//! `zk-failover`: measures leader failover of a real 3-server ensemble on loopback: the
//! time from `kill -9` of the leader to the first acknowledged write, over N trials.
//! Prints one JSON line per trial and a summary line (p50 / p99 / max in ms).
//!
//! It starts the ensemble itself (separate `zk-server` processes, fsync on), and stops
//! everything at the end. Build both binaries first:
//!
//! ```sh
//! cargo build --release -p zk-server -p zk-bench
//! ./target/release/zk-failover --trials 20
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use zk_client::{Client, CreateOptions};

/// Leader failover benchmark (kill -9 of the leader -> next acknowledged write).
#[derive(Debug, Parser)]
#[command(name = "zk-failover", version, about)]
struct Args {
    /// Number of kill -9 trials.
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// The zk-server binary [default: next to this one].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Server i uses client port P+i, peer port P+100+i, admin port P+200+i.
    #[arg(long, default_value_t = 27000)]
    base_port: u16,
    /// Where the servers keep their data (removed first).
    #[arg(long, default_value = "/tmp/zk-failover")]
    data_dir: PathBuf,
    /// Extra flags for every server (e.g. a config file with other timeouts).
    #[arg(long, allow_hyphen_values = true)]
    server_args: Vec<String>,
}

struct Ensemble {
    bin: PathBuf,
    args: Args,
    children: Vec<Option<Child>>,
}

impl Ensemble {
    fn client_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.args.base_port as usize + i)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let peers: Vec<String> = (0..3)
            .map(|k| {
                format!(
                    "{}=127.0.0.1:{}",
                    k + 1,
                    self.args.base_port as usize + 100 + k
                )
            })
            .collect();
        let child = Command::new(&self.bin)
            .arg("--id")
            .arg((i + 1).to_string())
            .arg("--peers")
            .arg(peers.join(","))
            .arg("--data-dir")
            .arg(self.args.data_dir.join(format!("node-{}", i + 1)))
            .arg("--client-addr")
            .arg(self.client_addr(i))
            .arg("--admin-addr")
            .arg(format!(
                "127.0.0.1:{}",
                self.args.base_port as usize + 200 + i
            ))
            .args(&self.args.server_args)
            .env(
                "RUST_LOG",
                std::env::var("ZK_FAILOVER_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stderr(Stdio::null())
            .stdout(match std::env::var_os("ZK_FAILOVER_LOG") {
                Some(_) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.args.data_dir.join(format!("node-{}.log", i + 1)))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                None => Stdio::null(),
            })
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        self.children[i] = Some(child);
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn leader_index(e: &Ensemble) -> Option<usize> {
    for i in 0..3 {
        if e.children[i].is_none() {
            continue;
        }
        let Ok(Ok(c)) =
            tokio::time::timeout(Duration::from_secs(2), Client::connect(&e.client_addr(i))).await
        else {
            continue;
        };
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), c.cluster_status()).await {
            let _ = c.close().await;
            if s.leader >= 1
                && s.members
                    .iter()
                    .all(|m| m.role != "unreachable" && m.lag < 1000)
            {
                return Some((s.leader - 1) as usize);
            }
        }
    }
    None
}

async fn run(args: Args) -> Result<(), String> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("zk-server"),
    };
    let _ = std::fs::remove_dir_all(&args.data_dir);
    let _ = std::fs::create_dir_all(&args.data_dir);
    let trials = args.trials;
    let mut e = Ensemble {
        bin,
        args,
        children: vec![None, None, None],
    };
    for i in 0..3 {
        e.spawn(i)?;
    }
    let mut samples = Vec::new();
    for trial in 0..trials {
        // A healthy ensemble with a known leader.
        let deadline = Instant::now() + Duration::from_secs(60);
        let leader = loop {
            if let Some(l) = leader_index(&e).await {
                break l;
            }
            if Instant::now() > deadline {
                return Err("the ensemble did not become healthy".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let survivors: Vec<String> = (0..3)
            .filter(|k| *k != leader)
            .map(|k| e.client_addr(k))
            .collect();
        let client = Client::builder()
            .servers(&survivors.join(","))
            .session_timeout(Duration::from_secs(10))
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
            .connect()
            .await
            .map_err(|err| format!("connect: {err}"))?;
        client
            .create(&format!("/warm-{trial}"), "", &CreateOptions::persistent())
            .await
            .map_err(|err| format!("warm-up write: {err}"))?;
        let t0 = Instant::now();
        e.kill(leader);
        let mut attempt = 0u64;
        let elapsed = loop {
            attempt += 1;
            let path = format!("/after-{trial}-{attempt}");
            match tokio::time::timeout(
                Duration::from_secs(2),
                client.create(&path, "", &CreateOptions::persistent()),
            )
            .await
            {
                Ok(Ok(_)) => break t0.elapsed(),
                other => {
                    if std::env::var_os("ZK_FAILOVER_TRACE").is_some() {
                        eprintln!(
                            "{:>7.1} ms attempt {attempt}: {other:?}",
                            t0.elapsed().as_secs_f64() * 1000.0
                        );
                    }
                    if t0.elapsed() > Duration::from_secs(60) {
                        return Err(format!("trial {trial}: no write acknowledged within 60 s"));
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        };
        let ms = elapsed.as_secs_f64() * 1000.0;
        println!(
            r#"{{"trial":{trial},"killed":{},"failover_ms":{ms:.1},"attempts":{attempt}}}"#,
            leader + 1
        );
        samples.push(ms);
        let _ = client.close().await;
        e.spawn(leader)?;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        r#"{{"summary":"failover","trials":{},"p50_ms":{:.1},"p99_ms":{:.1},"max_ms":{:.1},"min_ms":{:.1}}}"#,
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(0.0),
        samples.first().copied().unwrap_or(0.0),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
