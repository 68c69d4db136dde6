//! Assembles one node: storage, raft, the pipeline, the client and admin listeners, and
//! the leader's background duties (session expiry, container/TTL reaping). Owns their
//! tasks; [`ServerHandle::shutdown`] stops them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_proto::pb::zoo_keeper_server::ZooKeeperServer;

use crate::api::session::SessionService;
use crate::config::{Config, SyncPolicy};
use crate::error::ServerError;
use crate::pipeline::{prep, submit, Pipeline};
use crate::raft::log_store::LogStore;
use crate::raft::network::NoPeers;
use crate::raft::state_machine::StateMachine;
use crate::raft::{BasicNode, Raft};
use crate::session::expiry::SessionTracker;
use crate::state::Shared;
use crate::storage::wal::WalOptions;
use crate::storage::SyncMode;
use crate::tree::{ApplyResult, Command};

/// A running node. Dropping it does not stop it: call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    pipeline: Arc<Pipeline>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound client address (useful with port 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The bound admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// `host:port` for clients.
    pub fn connect_string(&self) -> String {
        self.client_addr.to_string()
    }

    /// The node's pipeline (tree, raft, watches): for tests and embedding.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Stops serving, closes every connection, stops raft and the log writer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.pipeline.shared.watches.close_all();
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        if let Err(e) = self.pipeline.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        tracing::info!(addr = %self.client_addr, "server stopped");
    }
}

/// Starts a node as the `zk-server` binary does and returns once it serves clients.
pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
    config.validate()?;
    let data_dir = config.data_dir.clone();
    let mkdir = |p: &std::path::Path| {
        std::fs::create_dir_all(p).map_err(|e| ServerError::DataDir {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    };
    mkdir(&data_dir)?;
    if config.sync == SyncPolicy::Never {
        tracing::warn!("--sync never: the log is not fsynced; acknowledged writes can be lost on a crash (UNSAFE, for tests only)");
    }
    let sync = match config.sync {
        SyncPolicy::Always => SyncMode::Always,
        SyncPolicy::Never => SyncMode::Never,
    };

    let shared = Arc::new(Shared::new());
    let wal = WalOptions {
        sync,
        segment_bytes: config.log_segment_bytes,
    };
    let log_store = LogStore::open_with(&data_dir.join("log"), wal)
        .await
        .map_err(|e| ServerError::Storage(e.to_string()))?;
    let state_machine = StateMachine::open_with(&data_dir.join("snapshots"), shared.clone(), sync)
        .map_err(|e| ServerError::Storage(e.to_string()))?;

    let raft_config = openraft::Config {
        cluster_name: "zk".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_timeout_ms.0,
        election_timeout_max: config.election_timeout_ms.1,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ServerError::Config {
        message: format!("raft: {e}"),
    })?;
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config),
        NoPeers,
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| ServerError::Raft(e.to_string()))?;

    let listener = TcpListener::bind(&config.client_addr)
        .await
        .map_err(|e| ServerError::Bind {
            addr: config.client_addr.clone(),
            source: e,
        })?;
    let client_addr = listener.local_addr().map_err(|e| ServerError::Bind {
        addr: config.client_addr.clone(),
        source: e,
    })?;
    let admin_listener =
        TcpListener::bind(&config.admin_addr)
            .await
            .map_err(|e| ServerError::Bind {
                addr: config.admin_addr.clone(),
                source: e,
            })?;
    let admin_addr = admin_listener.local_addr().map_err(|e| ServerError::Bind {
        addr: config.admin_addr.clone(),
        source: e,
    })?;

    bootstrap(&raft, config.node_id, client_addr).await?;

    let pipeline = Arc::new(Pipeline {
        config: config.clone(),
        shared,
        proposer: submit::Proposer::start(raft.clone()),
        raft,
        tracker: SessionTracker::new(),
    });
    become_ready(&pipeline).await?;

    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let max_msg = config.max_data_bytes.saturating_mul(2).max(4 << 20) + (64 << 10);
    let service = ZooKeeperServer::new(SessionService::new(pipeline.clone()))
        .max_decoding_message_size(max_msg)
        .max_encoding_message_size(max_msg);
    // One client port: ZooKeeper's protocol and four-letter words are served by the
    // listener; gRPC connections come out of `incoming`.
    let (incoming, accept_task) =
        crate::api::listener::spawn(listener, pipeline.clone(), stop_rx.clone());
    tasks.push(accept_task);
    let mut grpc_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = grpc_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!("client listener stopped: {e}");
        }
    }));

    let router = crate::admin::http::router(pipeline.clone());
    let mut admin_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = admin_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(admin_listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("admin listener stopped: {e}");
        }
    }));

    tasks.push(tokio::spawn(expire_sessions(pipeline.clone())));
    tasks.push(tokio::spawn(reap_nodes(pipeline.clone())));
    tasks.push(tokio::spawn(follow_leadership(pipeline.clone())));

    tracing::info!(
        node = config.node_id,
        client = %client_addr,
        admin = %admin_addr,
        data = %data_dir.display(),
        zxid = pipeline.shared.applied_zxid(),
        "serving"
    );
    Ok(ServerHandle {
        client_addr,
        admin_addr,
        pipeline,
        stop,
        tasks,
    })
}

/// Initialises the cluster on first start (single voter); a restart never re-initialises.
async fn bootstrap(raft: &Raft, node_id: u64, addr: SocketAddr) -> Result<(), ServerError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ServerError::Raft(e.to_string()))?;
    if !initialized {
        let mut members = BTreeMap::new();
        members.insert(node_id, BasicNode::new(addr.to_string()));
        match raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => return Err(ServerError::Raft(format!("initialize: {e}"))),
        }
    }
    Ok(())
}

/// Waits until this node leads and has applied its whole committed log, then restarts
/// every session's deadline from now.
async fn become_ready(p: &Pipeline) -> Result<(), ServerError> {
    p.raft
        .wait(Some(Duration::from_secs(30)))
        .state(ServerState::Leader, "become leader")
        .await
        .map_err(|e| ServerError::Raft(format!("no leadership: {e}")))?;
    submit::sync(&p.raft)
        .await
        .map_err(|(_, m)| ServerError::Raft(m))?;
    reset_sessions(p);
    Ok(())
}

fn reset_sessions(p: &Pipeline) {
    let sessions = p.shared.tree.read().sessions();
    p.tracker
        .reset(sessions.into_iter().map(|(id, info)| (id, info.timeout_ms)));
}

fn is_leader(p: &Pipeline) -> bool {
    p.raft.metrics().borrow().state == ServerState::Leader
}

/// When this node (again) becomes leader, session deadlines restart from now.
async fn follow_leadership(p: Arc<Pipeline>) {
    let mut metrics = p.raft.metrics();
    let mut was_leader = true;
    loop {
        if metrics.changed().await.is_err() {
            return;
        }
        let leader = metrics.borrow().state == ServerState::Leader;
        if leader && !was_leader && submit::sync(&p.raft).await.is_ok() {
            reset_sessions(&p);
            tracing::info!("became leader; session deadlines restarted");
        }
        was_leader = leader;
    }
}

/// The leader closes sessions not heard from within their timeout.
async fn expire_sessions(p: Arc<Pipeline>) {
    let period = Duration::from_millis((p.config.tick_ms / 2).clamp(10, 250));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if !is_leader(&p) {
            continue;
        }
        for id in p.tracker.take_expired(tokio::time::Instant::now()) {
            tracing::info!(session = format!("{id:#x}"), "session expired");
            match p
                .proposer
                .write(Command::CloseSession { session: id })
                .await
            {
                Ok(_) => {
                    p.tracker.forget(id);
                    p.shared.watches.kill(id);
                }
                Err((code, msg)) => {
                    tracing::warn!(%code, msg, "could not expire session");
                    p.tracker.unmark(id);
                }
            }
        }
    }
}

/// The leader removes empty containers and expired TTL nodes.
async fn reap_nodes(p: Arc<Pipeline>) {
    let mut tick = tokio::time::interval(Duration::from_millis(p.config.reap_interval_ms.max(10)));
    loop {
        tick.tick().await;
        if !is_leader(&p) {
            continue;
        }
        let now = prep::now_ms();
        let candidates = p.shared.tree.read().reap_candidates(now);
        for path in candidates {
            match p
                .proposer
                .write(Command::Reap {
                    path: path.clone(),
                    time_ms: now,
                })
                .await
            {
                Ok((_, ApplyResult::Reaped(true))) => tracing::debug!(path, "reaped"),
                Ok(_) => {}
                Err((code, msg)) => tracing::warn!(%code, msg, path, "reap failed"),
            }
        }
    }
}
