//! A real ensemble: `zk-server` processes on loopback, each with a temporary data dir,
//! with a fault-injecting [`Proxy`] on every peer link (node i dials node j through its
//! own proxy, via `--peer-dial`) and in front of every client port.
//!
//! Processes are killed when the [`Cluster`] is dropped (also on a panic or when the
//! future running it is cancelled by Ctrl-C): no server outlives the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::error::ChaosError;
use crate::proxy::Proxy;

/// How to start the ensemble.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Voting members (3 or 5).
    pub nodes: usize,
    /// The `zk-server` binary.
    pub server_bin: PathBuf,
    /// The servers' tick (sessions are clamped to [2, 20] ticks).
    pub tick_ms: u64,
    /// Snapshot every this many log entries (small, so a wiped node rejoins by snapshot).
    pub snapshot_every: u64,
    /// Keep the data dirs and server logs after the run (their path is printed).
    pub keep_dir: bool,
}

/// One server process and its addresses.
#[derive(Debug)]
pub struct Node {
    /// The server id (1-based).
    pub id: u64,
    /// Its real client address (the proxy forwards here).
    pub client_addr: String,
    /// Its real peer address.
    pub peer_addr: String,
    /// Its admin HTTP address (`/status`).
    pub admin_addr: String,
    /// Its data dir.
    pub data_dir: PathBuf,
    config_file: PathBuf,
    log_file: PathBuf,
    peer_dial: String,
    child: Option<Child>,
}

/// The running ensemble and its proxies.
pub struct Cluster {
    /// The servers, index i = server id i+1.
    pub nodes: Vec<Node>,
    /// `(i, j)`: the proxy node i dials to reach node j.
    pub peer_links: BTreeMap<(usize, usize), Proxy>,
    /// The proxy in front of each server's client port.
    pub client_proxies: Vec<Proxy>,
    options: ClusterOptions,
    dir: Option<tempfile::TempDir>,
}

/// Loopback ports outside the kernel's ephemeral range, reserved for this process
/// ([`zk_server::testing::free_port`]): servers are killed and restarted on them, and
/// an outgoing connection must not take one while its server is down.
fn free_ports(n: usize) -> Result<Vec<u16>, ChaosError> {
    (0..n)
        .map(|_| {
            zk_server::testing::free_port().map_err(|e| {
                ChaosError::io("picking free ports", std::io::Error::other(e.to_string()))
            })
        })
        .collect()
}

impl Cluster {
    /// Starts `options.nodes` servers and their proxies, and waits until the ensemble
    /// has a serving leader.
    pub async fn start(options: ClusterOptions) -> Result<Cluster, ChaosError> {
        if !options.server_bin.is_file() {
            return Err(ChaosError::NoServer(options.server_bin.clone()));
        }
        let dir = tempfile::Builder::new()
            .prefix("zk-chaos-")
            .tempdir()
            .map_err(|e| ChaosError::io("creating the run dir", e))?;
        let n = options.nodes;
        let ports = free_ports(3 * n)?;
        let addr = |p: u16| format!("127.0.0.1:{p}");
        let peers: Vec<String> = (0..n).map(|i| addr(ports[3 * i + 1])).collect();
        let mut peer_links = BTreeMap::new();
        for i in 0..n {
            for (j, peer) in peers.iter().enumerate() {
                if i != j {
                    let p = Proxy::start(peer)
                        .await
                        .map_err(|e| ChaosError::io("starting a peer proxy", e))?;
                    peer_links.insert((i, j), p);
                }
            }
        }
        let mut client_proxies = Vec::new();
        for i in 0..n {
            client_proxies.push(
                Proxy::start(&addr(ports[3 * i]))
                    .await
                    .map_err(|e| ChaosError::io("starting a client proxy", e))?,
            );
        }
        let peer_list = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}={p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for i in 0..n {
            let node_dir = dir.path().join(format!("node-{}", i + 1));
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| ChaosError::io("creating a node dir", e))?;
            let data_dir = node_dir.join("data");
            let config_file = node_dir.join("zk.toml");
            let config = format!(
                "id = {id}\npeers = \"{peer_list}\"\ndata_dir = \"{data}\"\nclient_addr = \"{client}\"\n\
                 admin_addr = \"{admin}\"\nsync = \"always\"\ntick_ms = {tick}\nsnapshot_every = {snap}\n\
                 log_segment_bytes = 65536\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\n\
                 election_timeout_max_ms = 600\n",
                id = i + 1,
                data = data_dir.display(),
                client = addr(ports[3 * i]),
                admin = addr(ports[3 * i + 2]),
                tick = options.tick_ms,
                snap = options.snapshot_every,
            );
            std::fs::write(&config_file, config)
                .map_err(|e| ChaosError::io("writing a node config", e))?;
            let peer_dial = (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("{}={}", peers[j], peer_links[&(i, j)].connect_string()))
                .collect::<Vec<_>>()
                .join(",");
            nodes.push(Node {
                id: i as u64 + 1,
                client_addr: addr(ports[3 * i]),
                peer_addr: peers[i].clone(),
                admin_addr: addr(ports[3 * i + 2]),
                data_dir,
                config_file,
                log_file: node_dir.join("server.log"),
                peer_dial,
                child: None,
            });
        }
        let mut cluster = Cluster {
            nodes,
            peer_links,
            client_proxies,
            options,
            dir: Some(dir),
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_healthy(Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    /// The run dir (data dirs and server logs).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no servers.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client connect string through the proxies, starting at server `first`.
    pub fn connect_string(&self, first: usize) -> String {
        let n = self.client_proxies.len();
        (0..n)
            .map(|k| self.client_proxies[(first + k) % n].connect_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts server `i` (after a kill, or the first time).
    pub fn spawn(&mut self, i: usize) -> Result<(), ChaosError> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_file)
            .map_err(|e| ChaosError::io("opening a server log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ChaosError::io("opening a server log", e))?;
        let child = Command::new(&self.options.server_bin)
            .arg("--config")
            .arg(&node.config_file)
            .arg("--peer-dial")
            .arg(&node.peer_dial)
            .env(
                "RUST_LOG",
                std::env::var("ZK_CHAOS_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ChaosError::io("starting zk-server", e))?;
        node.child = Some(child);
        Ok(())
    }

    /// True while server `i` runs (not killed).
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// `kill -9` server `i` and reaps it.
    pub async fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    /// Sends `SIGSTOP` (`stop = true`) or `SIGCONT` to server `i`.
    pub async fn signal_stop(&self, i: usize, stop: bool) {
        let Some(pid) = self.nodes[i].child.as_ref().and_then(|c| c.id()) else {
            return;
        };
        let sig = if stop { "-STOP" } else { "-CONT" };
        let _ = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }

    /// Deletes server `i`'s data dir (kill it first).
    pub fn wipe(&self, i: usize) -> Result<(), ChaosError> {
        match std::fs::remove_dir_all(&self.nodes[i].data_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ChaosError::io("wiping a data dir", e)),
        }
    }

    /// Pauses (`up = false`) or resumes both directions of the peer link i <-> j.
    pub fn set_link(&self, i: usize, j: usize, up: bool) {
        for key in [(i, j), (j, i)] {
            if let Some(p) = self.peer_links.get(&key) {
                if up {
                    p.resume()
                } else {
                    p.pause()
                }
            }
        }
    }

    /// Every proxy of server `i`: its peer links both ways and its client proxy.
    pub fn proxies_of(&self, i: usize) -> Vec<&Proxy> {
        let mut v: Vec<&Proxy> = self
            .peer_links
            .iter()
            .filter(|((a, b), _)| *a == i || *b == i)
            .map(|(_, p)| p)
            .collect();
        v.push(&self.client_proxies[i]);
        v
    }

    /// Resumes every proxy and removes every delay.
    pub fn heal_network(&self) {
        for p in self.peer_links.values().chain(self.client_proxies.iter()) {
            p.resume();
            p.reject(false);
            p.set_delay(Duration::ZERO);
        }
    }

    /// Server `i`'s `/status` JSON, if it answers within a second.
    pub async fn status(&self, i: usize) -> Option<serde_json::Value> {
        let addr = self.nodes[i].admin_addr.clone();
        let fetch = async move {
            let mut s = TcpStream::connect(&addr).await.ok()?;
            s.write_all(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await
                .ok()?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.ok()?;
            let text = String::from_utf8_lossy(&buf);
            let body = text.split_once("\r\n\r\n")?.1;
            serde_json::from_str(body).ok()
        };
        tokio::time::timeout(Duration::from_secs(1), fetch)
            .await
            .ok()
            .flatten()
    }

    /// The index of the serving leader, if one answers as such.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if !self.is_up(i) {
                continue;
            }
            if let Some(s) = self.status(i).await {
                if s["role"] == "leader" && s["serving"] == true {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Waits until every running server answers, one of them is the serving leader and
    /// all of them serve clients.
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), ChaosError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut leaders = 0;
            let mut serving = 0;
            let mut up = 0;
            let mut states = Vec::new();
            for i in 0..self.nodes.len() {
                if !self.is_up(i) {
                    continue;
                }
                up += 1;
                let status = self.status(i).await;
                states.push(match &status {
                    Some(s) => describe(i + 1, s),
                    None => format!("server {}: no answer", i + 1),
                });
                if let Some(s) = status {
                    if s["serving"] == true {
                        serving += 1;
                        if s["role"] == "leader" {
                            leaders += 1;
                        }
                    }
                }
            }
            if leaders == 1 && serving == up {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ChaosError::Unhealthy {
                    after: limit,
                    detail: format!(
                        "{serving}/{up} serving, {leaders} leaders ({})",
                        states.join("; ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills every server and removes the run dir (unless kept).
    pub async fn shutdown(mut self) -> Option<PathBuf> {
        for i in 0..self.nodes.len() {
            self.signal_stop(i, false).await;
            self.kill9(i).await;
        }
        let dir = self.dir.take()?;
        if self.options.keep_dir {
            Some(dir.keep())
        } else {
            None
        }
    }
}

/// One server's state from its `/status`, for a report: role, term, leader, applied
/// index and, when it does not serve, since when, when it last heard from its leader and
/// its last failed peer call.
pub fn describe(id: usize, s: &serde_json::Value) -> String {
    let secs = |v: &serde_json::Value| match v.as_u64() {
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "never".to_string(),
    };
    let mut line = format!(
        "server {id}: {} serving={} term={} leader={} applied={}",
        s["role"], s["serving"], s["raft"]["term"], s["leader"], s["raft"]["applied_index"]
    );
    let l = &s["liveness"];
    if s["serving"] != true && l.is_object() {
        line.push_str(&format!(
            ", not serving for {}, leader last heard {} ago",
            secs(&l["serving_changed_ms_ago"]),
            secs(&l["leader_contact_ms_ago"])
        ));
        if let Some(e) = l["last_peer_error"].as_object() {
            line.push_str(&format!(
                ", last peer error {} ago: {}",
                secs(&e["ms_ago"]),
                e["message"].as_str().unwrap_or("?")
            ));
        }
    }
    line
}
