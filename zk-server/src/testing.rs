//! Real servers for tests: ours, and applications' (like Curator's `TestingServer`).
//! A [`TestServer`] is a complete single node on loopback with ephemeral ports and a
//! temporary data directory, removed when it is dropped.

use std::path::{Path, PathBuf};

use crate::config::{Config, SyncPolicy};
use crate::error::ServerError;
use crate::node::{start, ServerHandle};

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
        // The port was just released; binding it again can race with TIME_WAIT on some
        // systems, so retry briefly.
        let mut last = None;
        for _ in 0..50 {
            match start(self.config.clone()).await {
                Ok(h) => {
                    self.handle = Some(h);
                    return Ok(());
                }
                Err(e @ ServerError::Bind { .. }) => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ServerError::Config {
            message: "restart failed".into(),
        }))
    }

    /// Stops the node and returns its data directory path (kept on disk until drop).
    pub async fn shutdown(mut self) -> PathBuf {
        self.stop().await;
        self.config.data_dir.clone()
    }
}
