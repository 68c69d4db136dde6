//! One server process under measurement: zk-server (spawned here, stopped with SIGTERM)
//! or Apache ZooKeeper standalone (through `bench/apache-zk/start.sh` / `stop.sh`). Only
//! loopback; whatever this starts is stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::workloads::Conn;
use crate::Target;

/// Which server a lifecycle run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// Our `zk-server` binary.
    ZkServer,
    /// Apache ZooKeeper 3.8 (Debian's package) via `bench/apache-zk/`.
    ApacheZk,
}

impl System {
    /// The name used in JSON lines (`zk-server`, `apache-zk`).
    pub fn name(self) -> &'static str {
        match self {
            System::ZkServer => "zk-server",
            System::ApacheZk => "apache-zk",
        }
    }

    /// The protocol to reach it with.
    pub fn target(self) -> Target {
        match self {
            System::ZkServer => Target::Native,
            System::ApacheZk => Target::Zk,
        }
    }
}

/// Where and how to run the server.
#[derive(Debug, Clone)]
pub struct Setup {
    pub system: System,
    /// zk-server's binary.
    pub bin: PathBuf,
    /// The directory with Apache's start.sh / stop.sh.
    pub scripts: PathBuf,
    /// All state of this run (removed first).
    pub dir: PathBuf,
    /// Client port; zk-server's admin HTTP is on port + 200.
    pub port: u16,
}

/// A running server.
pub struct Server {
    setup: Setup,
    child: Option<Child>,
    pid: u32,
}

impl Setup {
    pub fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn admin_port(&self) -> u32 {
        u32::from(self.port) + 200
    }

    /// zk-server's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("zk-server")
    }

    /// Apache ZooKeeper's state dir (ZK_BENCH_DIR).
    fn apache_dir(&self) -> PathBuf {
        self.dir.join("apache-zk")
    }

    /// The directory whose filesystem holds the server's durable writes.
    pub fn disk_dir(&self) -> PathBuf {
        match self.system {
            System::ZkServer => self.data_dir(),
            System::ApacheZk => self.apache_dir(),
        }
    }

    fn script(&self, name: &str) -> Command {
        let mut c = Command::new(self.scripts.join(name));
        c.env("ZK_BENCH_DIR", self.apache_dir())
            .env("ZK_CLIENT_PORT", self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    fn run_script(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let status = self
            .script(name)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.scripts.join(name).display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{name} {args:?} failed: {status}"))
        }
    }

    /// A fresh, empty state directory; for Apache also its configuration (written by
    /// `start.sh standalone`, whose server is stopped again and its data removed).
    pub fn prepare(&self) -> Result<(), String> {
        let _ = self.run_script("stop.sh", &[]);
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .map_err(|e| format!("cannot clear {}: {e}", self.dir.display()))?;
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        if self.system == System::ApacheZk {
            self.run_script("start.sh", &["standalone"])?;
            self.run_script("stop.sh", &[])?;
            for sub in ["data/version-2", "txlog/version-2"] {
                let d = self.apache_dir().join("zk1").join(sub);
                if d.exists() {
                    std::fs::remove_dir_all(&d)
                        .map_err(|e| format!("cannot clear {}: {e}", d.display()))?;
                }
            }
        }
        Ok(())
    }

    /// Starts the server (returns at once; see [`first_served`]). `snapshot_every`:
    /// zk-server's `--snapshot-every` (Apache keeps its default snapCount).
    pub fn start(&self, snapshot_every: u64) -> Result<Server, String> {
        match self.system {
            System::ZkServer => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("zk-server.log"))
                    .map_err(|e| format!("cannot open the server log: {e}"))?;
                let log2 = log
                    .try_clone()
                    .map_err(|e| format!("cannot open the server log: {e}"))?;
                let child = Command::new(&self.bin)
                    .arg("--data-dir")
                    .arg(self.data_dir())
                    .args(["--client-addr", &self.client_addr()])
                    .args(["--admin-addr", &format!("127.0.0.1:{}", self.admin_port())])
                    .args(["--sync", "always"])
                    .args(["--snapshot-every", &snapshot_every.to_string()])
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(log2)
                    .spawn()
                    .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
                let pid = child.id();
                Ok(Server {
                    setup: self.clone(),
                    child: Some(child),
                    pid,
                })
            }
            System::ApacheZk => {
                self.run_script("start.sh", &["node", "1"])?;
                let pid_file = self.apache_dir().join("zk1.pid");
                let pid = std::fs::read_to_string(&pid_file)
                    .map_err(|e| format!("{}: {e}", pid_file.display()))?;
                let pid = pid
                    .trim()
                    .parse()
                    .map_err(|e| format!("{}: {e}", pid_file.display()))?;
                Ok(Server {
                    setup: self.clone(),
                    child: None,
                    pid,
                })
            }
        }
    }
}

impl Server {
    /// The server's resident set size in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> Result<u64, String> {
        vm_rss_kib(self.pid)
    }

    /// Stops the server: SIGTERM, then SIGKILL after 20 s (zk-server); `stop.sh` (Apache).
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> Result<(), String> {
        match self.child.take() {
            Some(mut child) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &self.pid.to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => return Ok(()),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err("zk-server did not stop within 20 s (killed)".into());
                        }
                    }
                }
            }
            None if self.setup.system == System::ApacheZk => {
                self.pid = 0;
                self.setup.run_script("stop.sh", &[])
            }
            None => Ok(()),
        }
    }

    /// One `GET` of zk-server's admin HTTP (`/metrics`), the body.
    pub async fn admin_get(&self, path: &str) -> Result<String, String> {
        let addr = format!("127.0.0.1:{}", self.setup.admin_port());
        let ask = async {
            let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut text = String::new();
            s.read_to_string(&mut text)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(text)
        };
        let text = tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .map_err(|_| format!("GET {addr}{path}: timed out"))?
            .map_err(|e| format!("GET {addr}{path}: {e}"))?;
        Ok(text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default())
    }

    /// One gauge of zk-server's `/metrics` (a line `NAME VALUE`).
    pub async fn metric(&self, name: &str) -> Result<f64, String> {
        let body = self.admin_get("/metrics").await?;
        find_value(&body, name, ' ').ok_or_else(|| format!("no {name} in /metrics"))
    }

    /// One value of Apache ZooKeeper's `mntr` (a line `NAME<TAB>VALUE`).
    pub async fn mntr(&self, name: &str) -> Result<f64, String> {
        let addr = self.setup.client_addr();
        let ask = async {
            let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
            s.write_all(b"mntr").await.map_err(|e| e.to_string())?;
            let mut text = String::new();
            s.read_to_string(&mut text)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(text)
        };
        let text = tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .map_err(|_| format!("mntr {addr}: timed out"))?
            .map_err(|e| format!("mntr {addr}: {e}"))?;
        find_value(&text, name, '\t').ok_or_else(|| format!("no {name} in mntr"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() || self.pid != 0 {
            let _ = self.stop_now();
        }
    }
}

/// The value of the line `NAME<sep>VALUE` in `text`.
pub fn find_value(text: &str, name: &str, sep: char) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.split_once(sep))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// `VmRSS` of process `pid` in KiB.
pub fn vm_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_vm_rss(&text).ok_or_else(|| format!("{path}: no VmRSS line"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until a fresh session on `addr` reads `path` (the first served request);
/// gives up after `limit`. Retries every 2 ms.
pub async fn first_served(
    target: Target,
    addr: &str,
    path: &str,
    limit: Duration,
) -> Result<Conn, String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = String::from("never tried");
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            match Conn::connect_within(target, addr, None, Duration::from_secs(2)).await {
                Ok(conn) => match conn.get(path).await {
                    Ok(()) => return Ok(conn),
                    Err(e) => {
                        last = e.to_string();
                        conn.close().await;
                    }
                },
                Err(e) => last = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!(
        "{addr} did not serve {path} within {limit:?}: {last}"
    ))
}

/// `Path::display` as an owned string (for JSON).
pub fn shown(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss_and_gauges() {
        let status = "Name:\tzk-server\nVmPeak:\t  9 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        let metrics =
            "# HELP zk_raft_snapshot_index x\nzk_raft_snapshot_index 42\nzk_raft_term 3\n";
        assert_eq!(
            find_value(metrics, "zk_raft_snapshot_index", ' '),
            Some(42.0)
        );
        assert_eq!(
            find_value("zk_max_snapshottime\t17\n", "zk_max_snapshottime", '\t'),
            Some(17.0)
        );
        assert_eq!(find_value(metrics, "zk_missing", ' '), None);
        let me = vm_rss_kib(std::process::id()).expect("own RSS");
        assert!(me > 0);
    }
}
