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
//!
//! `--system apache-zk` measures Apache ZooKeeper 3.8's ensemble the same way (started and
//! stopped with `bench/apache-zk/start.sh` / `stop.sh`, kill -9 of the server whose
//! `srvr` says `Mode: leader`, writes through the `zookeeper-client` crate):
//!
//! ```sh
//! ./target/release/zk-failover --system apache-zk --trials 20
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zk_client::{Client, CreateOptions};
use zookeeper_client as zk;

/// Which ensemble to fail over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum System {
    /// Three `zk-server` processes.
    ZkServer,
    /// Three Apache ZooKeeper 3.8 servers (Debian's package), via `bench/apache-zk/`.
    ApacheZk,
}

/// Leader failover benchmark (kill -9 of the leader -> next acknowledged write).
#[derive(Debug, Parser)]
#[command(name = "zk-failover", version, about)]
struct Args {
    /// The ensemble to measure.
    #[arg(long, value_enum, default_value_t = System::ZkServer)]
    system: System,
    /// `--system apache-zk`: the directory with start.sh / stop.sh.
    #[arg(long, default_value = "bench/apache-zk")]
    apache_scripts: PathBuf,
    /// Number of kill -9 trials.
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// The zk-server binary [default: next to this one].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Server i uses client port P+i, peer port P+100+i, admin port P+200+i (Apache
    /// ZooKeeper: client port P+300+i, quorum port P+400+i, election port P+500+i).
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

async fn run_zk_server(args: Args) -> Result<Vec<f64>, String> {
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
        let (elapsed, attempt) = first_acknowledged_write(trial, t0, |path| {
            let client = &client;
            async move {
                client
                    .create(&path, "", &CreateOptions::persistent())
                    .await
                    .map(|_| ())
            }
        })
        .await?;
        let ms = elapsed.as_secs_f64() * 1000.0;
        println!(
            r#"{{"system":"zk-server","trial":{trial},"killed":{},"failover_ms":{ms:.1},"attempts":{attempt}}}"#,
            leader + 1
        );
        samples.push(ms);
        let _ = client.close().await;
        e.spawn(leader)?;
    }
    Ok(samples)
}

/// Apache ZooKeeper's 3-server ensemble, driven by `bench/apache-zk/` scripts; stopped
/// on drop.
struct Apache {
    scripts: PathBuf,
    dir: PathBuf,
    base_port: u16,
}

impl Apache {
    fn client_port(&self, i: usize) -> usize {
        self.base_port as usize + 300 + i
    }

    fn client_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.client_port(i))
    }

    fn script(&self, name: &str) -> Command {
        let mut c = Command::new(self.scripts.join(name));
        c.env("ZK_BENCH_DIR", &self.dir)
            .env("ZK_CLIENT_PORT", self.client_port(0).to_string())
            .env(
                "ZK_QUORUM_PORT",
                (self.base_port as usize + 400).to_string(),
            )
            .env(
                "ZK_ELECTION_PORT",
                (self.base_port as usize + 500).to_string(),
            )
            .stdout(Stdio::null());
        c
    }

    fn run_script(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let status = self
            .script(name)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {name}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{name} {args:?} failed: {status}"))
        }
    }

    /// kill -9 of server `i` (0-based), by its pid file.
    fn kill9(&self, i: usize) -> Result<(), String> {
        let pid_file = self.dir.join(format!("zk{}.pid", i + 1));
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?;
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        let _ = std::fs::remove_file(&pid_file);
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -9 {} failed", pid.trim()))
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.script("stop.sh").stderr(Stdio::null()).status();
    }
}

/// The `Mode:` line of the `srvr` four-letter word, if the server answers within 2 s.
async fn srvr_mode(addr: &str) -> Option<String> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"srvr").await.ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// The leader's index once all three serve (one leader, two followers).
async fn apache_leader(a: &Apache) -> Option<usize> {
    let mut leader = None;
    for i in 0..3 {
        match srvr_mode(&a.client_addr(i)).await.as_deref() {
            Some("leader") if leader.is_none() => leader = Some(i),
            Some("follower") => {}
            _ => return None,
        }
    }
    leader
}

async fn run_apache(args: Args) -> Result<Vec<f64>, String> {
    let _ = std::fs::remove_dir_all(&args.data_dir);
    let a = Apache {
        scripts: args.apache_scripts.clone(),
        dir: args.data_dir.join("apache-zk"),
        base_port: args.base_port,
    };
    a.run_script("start.sh", &["ensemble"])?;
    let mut samples = Vec::new();
    for trial in 0..args.trials {
        let deadline = Instant::now() + Duration::from_secs(60);
        let leader = loop {
            if let Some(l) = apache_leader(&a).await {
                break l;
            }
            if Instant::now() > deadline {
                return Err("the Apache ZooKeeper ensemble did not become healthy".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let survivors: Vec<String> = (0..3)
            .filter(|k| *k != leader)
            .map(|k| a.client_addr(k))
            .collect();
        let client = tokio::time::timeout(
            Duration::from_secs(15),
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(10))
                .connect(&survivors.join(",")),
        )
        .await
        .map_err(|_| "connect: timed out".to_string())?
        .map_err(|err| format!("connect: {err}"))?;
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client
            .create(&format!("/warm-{trial}"), b"", &persistent)
            .await
            .map_err(|err| format!("warm-up write: {err}"))?;
        let t0 = Instant::now();
        a.kill9(leader)?;
        let (elapsed, attempt) = first_acknowledged_write(trial, t0, |path| {
            let (client, persistent) = (&client, &persistent);
            async move { client.create(&path, b"", persistent).await.map(|_| ()) }
        })
        .await?;
        let ms = elapsed.as_secs_f64() * 1000.0;
        println!(
            r#"{{"system":"apache-zk","trial":{trial},"killed":{},"failover_ms":{ms:.1},"attempts":{attempt}}}"#,
            leader + 1
        );
        samples.push(ms);
        drop(client);
        a.run_script("start.sh", &["node", &(leader + 1).to_string()])?;
    }
    Ok(samples)
}

async fn run(args: Args) -> Result<(), String> {
    let system = args.system;
    let mut samples = match system {
        System::ZkServer => run_zk_server(args).await?,
        System::ApacheZk => run_apache(args).await?,
    };
    samples.sort_by(|a, b| a.total_cmp(b));
    let name = match system {
        System::ZkServer => "zk-server",
        System::ApacheZk => "apache-zk",
    };
    println!(
        r#"{{"summary":"failover","system":"{name}","trials":{},"p50_ms":{:.1},"p99_ms":{:.1},"max_ms":{:.1},"min_ms":{:.1}}}"#,
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(0.0),
        samples.first().copied().unwrap_or(0.0),
    );
    Ok(())
}

/// Retries a create every 2 ms (each bounded to 2 s) until one is acknowledged; returns
/// the time since `t0` and the number of attempts. `ZK_FAILOVER_TRACE` prints failures.
async fn first_acknowledged_write<F, Fut, E>(
    trial: u32,
    t0: Instant,
    mut write: F,
) -> Result<(Duration, u64), String>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Debug,
{
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        let path = format!("/after-{trial}-{attempt}");
        match tokio::time::timeout(Duration::from_secs(2), write(path)).await {
            Ok(Ok(())) => return Ok((t0.elapsed(), attempt)),
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
    }
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
