//! Real servers for tests: ours, and applications' (like Curator's `TestingServer`).
//! A [`TestServer`] is a complete single node on loopback with ephemeral ports and a
//! temporary data directory, removed when it is dropped.

use std::path::{Path, PathBuf};

use crate::config::{Config, SyncPolicy};
use crate::error::ServerError;
use crate::node::{start, ServerHandle};

mod ports;
pub use ports::free_port;

/// Starts a node, retrying for up to 5 s while one of its ports does not bind yet (a
/// port just released by a stopped node can linger in TIME_WAIT on some systems).
async fn start_rebinding(config: &Config) -> Result<ServerHandle, ServerError> {
    let mut last = None;
    for _ in 0..50 {
        match start(config.clone()).await {
            Ok(h) => return Ok(h),
            Err(e @ ServerError::Bind { .. }) => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ServerError::Config {
        message: "node start failed".into(),
    }))
}

/// A temporary data directory and the test defaults: loopback, ephemeral ports, fsync
/// off (UNSAFE, tests only), 100 ms ticks, reaping every 50 ms, short raft timeouts.
fn test_template() -> Result<(tempfile::TempDir, Config), ServerError> {
    let dir = tempfile::tempdir().map_err(|e| ServerError::DataDir {
        path: std::env::temp_dir().display().to_string(),
        message: e.to_string(),
    })?;
    let mut config = Config::for_test(dir.path());
    config.tick_ms = 100;
    config.reap_interval_ms = 50;
    config.heartbeat_ms = 50;
    config.election_timeout_ms = (150, 300);
    config.sync = SyncPolicy::Never;
    Ok((dir, config))
}

/// A single-node server for tests.
pub struct TestServer {
    handle: Option<ServerHandle>,
    config: Config,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a node with test defaults: loopback, ephemeral ports, fsync off (UNSAFE,
    /// tests only), 100 ms ticks (session timeouts 200 ms..2 s), reaping every 50 ms.
    pub async fn start() -> Result<TestServer, ServerError> {
        TestServer::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], with the config adjusted by `f` first.
    pub async fn start_with(f: impl FnOnce(&mut Config)) -> Result<TestServer, ServerError> {
        let (dir, mut config) = test_template()?;
        f(&mut config);
        let handle = start(config.clone()).await?;
        Ok(TestServer {
            handle: Some(handle),
            config,
            _dir: Some(dir),
        })
    }

    /// `host:port` to connect to.
    pub fn connect_string(&self) -> String {
        self.handle
            .as_ref()
            .map(|h| h.connect_string())
            .unwrap_or_else(|| self.config.client_addr.clone())
    }

    /// The running node (None while stopped).
    pub fn handle(&self) -> Option<&ServerHandle> {
        self.handle.as_ref()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The config the node runs with (ports resolved after the first start).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops the node, keeping its data directory.
    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            let addr = h.client_addr();
            let admin = h.admin_addr();
            h.shutdown().await;
            self.config.client_addr = addr.to_string();
            self.config.admin_addr = admin.to_string();
        }
    }

    /// Stops the node and starts it again on the same data and the same client port.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await;
        self.handle = Some(start_rebinding(&self.config).await?);
        Ok(())
    }

    /// Stops the node and returns its data directory path (kept on disk until drop).
    pub async fn shutdown(mut self) -> PathBuf {
        self.stop().await;
        self.config.data_dir.clone()
    }
}

/// An ensemble chosen but not started (see [`TestCluster::plan`]).
pub struct ClusterPlan {
    /// One config per node (index i = node id i + 1); adjust before starting.
    pub configs: Vec<Config>,
    dir: tempfile::TempDir,
    template: Config,
    voters: u64,
}

impl ClusterPlan {
    /// Starts every node and waits for a leader.
    pub async fn start(self) -> Result<TestCluster, ServerError> {
        let mut cluster = TestCluster {
            nodes: self.configs.into_iter().map(|c| (c, None)).collect(),
            dir: self.dir,
            template: self.template,
            voters: self.voters,
        };
        let mut started = Ok(());
        for i in 0..cluster.nodes.len() {
            if let Err(e) = cluster.start_node(i).await {
                started = Err(e);
                break;
            }
        }
        if let Err(e) = started {
            cluster.shutdown().await;
            return Err(e);
        }
        if let Err(e) = cluster
            .wait_for_leader(std::time::Duration::from_secs(20))
            .await
        {
            cluster.shutdown().await;
            return Err(e);
        }
        Ok(cluster)
    }
}

/// A real ensemble in this process (like Curator's `TestingCluster`): voters and
/// observers on loopback with their own ports and data directories, fsync off (UNSAFE,
/// tests only), short ticks and election timeouts.
pub struct TestCluster {
    nodes: Vec<(Config, Option<ServerHandle>)>,
    dir: tempfile::TempDir,
    template: Config,
    voters: u64,
}

impl TestCluster {
    /// Starts `voters` voting members and `observers` observers and waits for a leader.
    pub async fn start(voters: u64, observers: u64) -> Result<TestCluster, ServerError> {
        TestCluster::start_with(voters, observers, |_| {}).await
    }

    /// Like [`TestCluster::start`], with every node's config adjusted by `f` first.
    /// Ports are picked free just before the start; if one was taken in between (or no
    /// leader emerged on a busy machine), the whole ensemble is started again on new
    /// ports, up to three times.
    pub async fn start_with(
        voters: u64,
        observers: u64,
        f: impl Fn(&mut Config),
    ) -> Result<TestCluster, ServerError> {
        let mut last = None;
        for _ in 0..3 {
            match TestCluster::try_start(voters, observers, &f).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!("test cluster did not start, retrying on new ports: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ServerError::Raft("test cluster did not start".into())))
    }

    async fn try_start(
        voters: u64,
        observers: u64,
        f: &impl Fn(&mut Config),
    ) -> Result<TestCluster, ServerError> {
        TestCluster::plan(voters, observers, f)?.start().await
    }

    /// Chooses ports, directories and configs for an ensemble without starting it, so
    /// a test can adjust each node's config first (e.g. put proxies between peers with
    /// [`Config::peer_dial`]); then [`ClusterPlan::start`].
    pub fn plan(
        voters: u64,
        observers: u64,
        f: &impl Fn(&mut Config),
    ) -> Result<ClusterPlan, ServerError> {
        let (dir, mut template) = test_template()?;
        // Several nodes share two cores in tests: leave room before calling elections.
        template.election_timeout_ms = (300, 600);
        f(&mut template);
        let mut ports = Vec::new();
        for _ in 0..(voters + observers) {
            ports.push((free_port()?, free_port()?, free_port()?));
        }
        let configs =
            crate::ensemble::local_ensemble(&template, voters, observers, dir.path(), |id| {
                let (c, p, a) = ports[(id - 1) as usize];
                crate::ensemble::NodePorts {
                    client: format!("127.0.0.1:{c}"),
                    peer: format!("127.0.0.1:{p}"),
                    admin: format!("127.0.0.1:{a}"),
                }
            });
        Ok(ClusterPlan {
            configs,
            dir,
            template,
            voters,
        })
    }

    async fn start_node(&mut self, i: usize) -> Result<(), ServerError> {
        self.nodes[i].1 = Some(start_rebinding(&self.nodes[i].0).await?);
        Ok(())
    }

    /// Number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Client addresses of all nodes, comma-separated (a client connect string).
    pub fn connect_string(&self) -> String {
        crate::ensemble::connect_string(
            &self
                .nodes
                .iter()
                .map(|(c, _)| c.clone())
                .collect::<Vec<_>>(),
        )
    }

    /// Client address of node `i` (0-based; node ids are `i + 1`).
    pub fn client_addr(&self, i: usize) -> String {
        self.nodes[i].0.client_addr.clone()
    }

    /// Peer address of node `i`.
    pub fn peer_addr(&self, i: usize) -> String {
        self.nodes[i].0.peer_bind_addr()
    }

    /// The running node `i`.
    pub fn handle(&self, i: usize) -> Option<&ServerHandle> {
        self.nodes[i].1.as_ref()
    }

    /// The config of node `i`.
    pub fn config(&self, i: usize) -> &Config {
        &self.nodes[i].0
    }

    /// Index of the current leader among running nodes, if they agree on one.
    pub fn leader(&self) -> Option<usize> {
        for (c, h) in &self.nodes {
            if let Some(h) = h {
                let m = h.pipeline().raft.metrics().borrow().clone();
                if m.state == openraft::ServerState::Leader {
                    return Some((c.node_id - 1) as usize);
                }
            }
        }
        None
    }

    /// Waits until some running node leads and every running node serves clients.
    pub async fn wait_for_leader(&self, within: std::time::Duration) -> Result<usize, ServerError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(l) = self.leader() {
                let all_serving = self
                    .nodes
                    .iter()
                    .filter_map(|(_, h)| h.as_ref())
                    .all(|h| h.pipeline().shared.is_serving());
                if all_serving {
                    return Ok(l);
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ServerError::Raft("no leader elected in time".into()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops node `i` (its data stays).
    pub async fn stop(&mut self, i: usize) {
        if let Some(h) = self.nodes[i].1.take() {
            h.shutdown().await;
        }
    }

    /// Starts node `i` again on the same ports and data.
    pub async fn restart(&mut self, i: usize) -> Result<(), ServerError> {
        self.stop(i).await;
        self.start_node(i).await
    }

    /// Stops node `i`, deletes its data directory, and starts it again empty.
    pub async fn wipe_and_restart(&mut self, i: usize) -> Result<(), ServerError> {
        self.stop(i).await;
        let dir = self.nodes[i].0.data_dir.clone();
        std::fs::remove_dir_all(&dir).map_err(|e| ServerError::DataDir {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        self.start_node(i).await
    }

    /// Starts a new node that is not yet a member (id = next free id), configured with
    /// the original voters as peers; an observer joins by itself, a future voter waits
    /// for `add-voter`. Returns its index.
    pub async fn add_node(&mut self, observer: bool) -> Result<usize, ServerError> {
        let id = self.nodes.len() as u64 + 1;
        let (c, p, a) = (free_port()?, free_port()?, free_port()?);
        let peers = self.nodes[0].0.peers.clone();
        let config = Config {
            node_id: id,
            peers,
            peer_addr: Some(format!("127.0.0.1:{p}")),
            observer: true,
            data_dir: self.dir.path().join(format!("node-{id}")),
            client_addr: format!("127.0.0.1:{c}"),
            admin_addr: format!("127.0.0.1:{a}"),
            ..self.template.clone()
        };
        let _ = (observer, self.voters);
        self.nodes.push((config, None));
        let i = self.nodes.len() - 1;
        self.start_node(i).await?;
        Ok(i)
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}
