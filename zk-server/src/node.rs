//! Assembles one node: storage, raft, the pipeline, the client and admin listeners, and
//! the leader's background duties (session expiry, container/TTL reaping). Owns their
//! tasks; [`ServerHandle::shutdown`] stops them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_proto::pb::zoo_keeper_server::ZooKeeperServer;
use zk_proto::peer::peer_server::PeerServer;

use crate::api::peer::PeerService;
use crate::api::session::SessionService;
use crate::config::{Config, SyncPolicy};
use crate::error::ServerError;
use crate::pipeline::{prep, submit, Pipeline};
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, Peers};
use crate::raft::rpc::{MembershipChange, PeerReply, PeerRequest};
use crate::raft::state_machine::StateMachine;
use crate::raft::{Member, Raft};
use crate::state::Shared;
use crate::storage::wal::WalOptions;
use crate::storage::SyncMode;
use crate::tls::reload::Reloader;
use crate::tls::LiveConfig;
use crate::tree::{ApplyResult, Command};

/// A running node. Dropping it does not stop it: call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    peer_addr: Option<SocketAddr>,
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

    /// The bound peer address (None for a single node).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
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
        crate::storage::ensure_dir(p).map_err(|e| ServerError::DataDir {
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

    let wal = WalOptions {
        sync,
        segment_bytes: config.log_segment_bytes,
        preallocate_bytes: config.log_preallocate_bytes,
    };
    let log_store = LogStore::open_with(&data_dir.join("log"), wal)
        .await
        .map_err(|e| ServerError::Storage(e.to_string()))?;
    let shared = Arc::new(Shared::with_storage_stats(log_store.storage_stats()));
    shared
        .watches
        .set_limit(config.limits.max_watches_per_session);
    let flush_progress = log_store.flush_progress();
    let state_machine = StateMachine::open_with(&data_dir.join("snapshots"), shared.clone(), sync)
        .map_err(|e| ServerError::Storage(e.to_string()))?;

    let raft_config = openraft::Config {
        cluster_name: "zk".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_timeout_ms.0,
        election_timeout_max: config.election_timeout_ms.1,
        // Scheduled by `snapshot_by_ops` instead: an entry is a batch of any size.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: 0,
        install_snapshot_timeout: snapshot_timeout_ms(&config),
        ..Default::default()
    }
    .validate()
    .map_err(|e| ServerError::Config {
        message: format!("raft: {e}"),
    })?;
    let peer_secret = crate::tls::peer_auth::PeerSecret::new(config.tls.peer_secret.as_deref())?;
    let peers = Peers::with_dial(config.peer_dial.clone().into_iter().collect())
        .with_security(config.tls.peer_dial_config()?, peer_secret.clone())
        .with_caller(crate::raft::caller::Caller::new(
            config.node_id,
            &config
                .peers
                .get(&config.node_id)
                .cloned()
                .unwrap_or_else(|| config.peer_bind_addr()),
        ));
    for (id, addr) in &config.peers {
        peers.learn(*id, addr);
    }
    let client_tls = config.tls.client_port_config()?.map(LiveConfig::new);
    let peer_tls = config.tls.peer_port_config()?.map(LiveConfig::new);
    let admin_tls = config.tls.admin_port_config()?.map(LiveConfig::new);
    let applied_log_ids = state_machine.applied_log_ids();
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config),
        Network::new(peers.clone()),
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| ServerError::Raft(e.to_string()))?;

    #[cfg(feature = "simulation")]
    if crate::sim::active() {
        crate::sim::observe_raft(config.node_id, raft.metrics());
    }
    let listener = Listener::bind(&config.client_addr).await?;
    let client_addr = listener.local_addr(&config.client_addr)?;
    // No admin HTTP port inside a simulation (axum needs a real socket).
    let admin_listener = if crate::sim::active() {
        None
    } else {
        Some(
            TcpListener::bind(&config.admin_addr)
                .await
                .map_err(|e| ServerError::Bind {
                    addr: config.admin_addr.clone(),
                    source: e,
                })?,
        )
    };
    let admin_addr = match &admin_listener {
        Some(l) => l.local_addr().map_err(|e| ServerError::Bind {
            addr: config.admin_addr.clone(),
            source: e,
        })?,
        None => SocketAddr::from(([0, 0, 0, 0], 0)),
    };

    let peer_listener = if config.clustered() {
        Some(Listener::bind(&config.peer_bind_addr()).await?)
    } else {
        None
    };
    let peer_addr = match &peer_listener {
        Some(l) => Some(l.local_addr(&config.peer_bind_addr())?),
        None => None,
    };

    let pipeline = Arc::new(Pipeline {
        config: config.clone(),
        proposer: submit::Proposer::start(
            raft.clone(),
            config.node_id,
            peers.clone(),
            shared.clone(),
            flush_progress,
        ),
        shared,
        raft,
        peers,
        client_addr: client_addr.to_string(),
    });

    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let reloader = tls_reloader(
        &config,
        &pipeline,
        [client_tls.clone(), admin_tls.clone(), peer_tls.clone()],
    );
    if !reloader.is_empty() {
        tasks.push(reloader.spawn(
            Duration::from_millis(config.tls.reload_interval_ms),
            stop_rx.clone(),
        ));
    }

    if let Some(listener) = peer_listener {
        let service = PeerServer::new(PeerService::new(pipeline.clone(), stop_rx.clone()))
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        // Every peer call must carry the peer secret, when one is set, and must not come
        // from another ensemble's server.
        let known = pipeline.peers.clone();
        let service = tonic::service::interceptor::InterceptedService::new(service, move |req| {
            peer_secret
                .check(req)
                .and_then(|req| crate::raft::caller::check(&known, req))
        });
        let mut peer_stop = stop_rx.clone();
        let router = tonic::transport::Server::builder()
            .http2_max_pending_accept_reset_streams(Some(
                crate::api::peer::MAX_PENDING_RESET_STREAMS,
            ))
            .add_service(service);
        let shutdown = async move {
            let _ = peer_stop.wait_for(|s| *s).await;
        };
        let served: futures::future::BoxFuture<'static, Result<(), tonic::transport::Error>> =
            match (listener, peer_tls) {
                #[cfg(feature = "simulation")]
                (Listener::Sim(listener), _) => {
                    let (incoming, accept) = crate::sim::peer_incoming(listener, stop_rx.clone());
                    tasks.push(accept);
                    Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown))
                }
                // Mutual TLS: a peer without a certificate from the peer CA never gets
                // past the handshake.
                (Listener::Tokio(listener), Some(tls)) => {
                    let incoming =
                        crate::tls::accept::spawn_incoming(listener, tls, stop_rx.clone());
                    Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown))
                }
                (Listener::Tokio(listener), None) => {
                    let incoming = tonic::transport::server::TcpIncoming::from(listener)
                        .with_nodelay(Some(true));
                    Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown))
                }
            };
        tasks.push(tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::error!("peer listener stopped: {e}");
            }
        }));
        tasks.push(tokio::spawn(join_ensemble(pipeline.clone())));
        // Experimental, off by default: measured slower on the 2-core benchmark box
        // (docs/benchmarks.md, "Forwarded writes at inflight 1").
        if crate::raft::commit_push::enabled() {
            tasks.push(tokio::spawn(crate::raft::commit_push::run(
                pipeline.raft.clone(),
                config.node_id,
                pipeline.peers.clone(),
                applied_log_ids,
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(learn_member_addresses(pipeline.clone())));
        tasks.push(tokio::spawn(watch_leader_process(pipeline.clone())));
        tasks.push(tokio::spawn(report_sessions(pipeline.clone())));
    } else {
        bootstrap_single(&pipeline.raft, config.node_id, client_addr).await?;
        become_ready(&pipeline).await?;
    }

    let max_msg = config.max_data_bytes.saturating_mul(2).max(4 << 20) + (64 << 10);
    let service = ZooKeeperServer::new(SessionService::new(pipeline.clone()))
        .max_decoding_message_size(max_msg)
        .max_encoding_message_size(max_msg);
    // One client port: ZooKeeper's protocol and four-letter words are served by the
    // listener; gRPC connections come out of `incoming`.
    let (incoming, accept_task) = match listener {
        Listener::Tokio(listener) => {
            crate::api::listener::spawn(listener, pipeline.clone(), client_tls, stop_rx.clone())
        }
        #[cfg(feature = "simulation")]
        Listener::Sim(listener) => {
            crate::sim::client_incoming(listener, pipeline.clone(), stop_rx.clone())
        }
    };
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

    if let Some(admin_listener) = admin_listener {
        let router = crate::admin::http::router(pipeline.clone());
        let mut admin_stop = stop_rx.clone();
        let admin_stop_rx = stop_rx.clone();
        let admin_allow_plaintext = config.tls.admin_allow_plaintext;
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = admin_stop.wait_for(|s| *s).await;
            };
            let served = match admin_tls {
                None => {
                    axum::serve(admin_listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
                Some(tls) => {
                    match crate::tls::admin::spawn(
                        admin_listener,
                        tls,
                        admin_allow_plaintext,
                        admin_stop_rx,
                    ) {
                        Ok(incoming) => {
                            axum::serve(incoming, router)
                                .with_graceful_shutdown(shutdown)
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = served {
                tracing::error!("admin listener stopped: {e}");
            }
        }));
    }

    let armed = Arc::new(AtomicU64::new(NO_TERM));
    tasks.push(tokio::spawn(expire_sessions(
        pipeline.clone(),
        armed.clone(),
    )));
    tasks.push(tokio::spawn(reap_nodes(pipeline.clone())));
    tasks.push(tokio::spawn(snapshot_by_ops(pipeline.clone())));
    tasks.push(tokio::spawn(follow_leadership(pipeline.clone(), armed)));
    tasks.push(tokio::spawn(monitor_serving(pipeline.clone())));

    tracing::info!(
        node = config.node_id,
        client = %client_addr,
        admin = %admin_addr,
        data = %data_dir.display(),
        zxid = pipeline.shared.applied_zxid(),
        "listening"
    );
    Ok(ServerHandle {
        client_addr,
        admin_addr,
        peer_addr,
        pipeline,
        stop,
        tasks,
    })
}

/// Watches the certificate files of each TLS configuration that is on (`live`: the
/// client, admin and peer ports), and the peer dialling identity, for reloads.
fn tls_reloader(
    config: &Config,
    pipeline: &Arc<Pipeline>,
    live: [Option<LiveConfig>; 3],
) -> Reloader {
    let mut r = Reloader::new(pipeline.shared.metrics.tls_reloads.clone());
    let [client, admin, peer] = live;
    if let Some(live) = client {
        let tls = config.tls.clone();
        r.watch("client port", tls.client_files(), move || {
            if let Some(c) = tls.client_port_config()? {
                live.replace(c);
            }
            Ok(())
        });
    }
    if let Some(live) = admin {
        let tls = config.tls.clone();
        r.watch("admin port", tls.client_files(), move || {
            if let Some(c) = tls.admin_port_config()? {
                live.replace(c);
            }
            Ok(())
        });
    }
    if let Some(live) = peer {
        let tls = config.tls.clone();
        let peers = pipeline.peers.clone();
        r.watch("peer port", tls.peer_files(), move || {
            // Both or neither: the certificate we accept peers with and the one we dial
            // them with are the same files.
            let (server, dial) = (tls.peer_port_config()?, tls.peer_dial_config()?);
            if let (Some(server), Some(dial)) = (server, dial) {
                live.replace(server);
                peers.set_dial_tls(dial);
            }
            Ok(())
        });
    }
    r
}

/// How long the leader waits for a follower to take one snapshot chunk (and install
/// the snapshot, with the last chunk). openraft's default, 200 ms, is less than a
/// follower that fsyncs a snapshot of a few hundred KB takes on a loaded machine: every
/// attempt timed out and was sent again, and the follower, which gets no AppendEntries
/// while a snapshot is under way, stopped serving until one attempt was quick enough
/// (issue #7, docs/reliability.md). A slow attempt only delays that one follower.
fn snapshot_timeout_ms(config: &Config) -> u64 {
    (config.election_timeout_ms.1 * 10).max(5_000)
}

/// Keeps the peer dialler's map of who answers where ([`Peers::learn`]) in step with the
/// membership, for servers added after this one was configured.
async fn learn_member_addresses(p: Arc<Pipeline>) {
    let mut metrics = p.raft.metrics();
    let mut seen = None;
    loop {
        let nodes: Option<Vec<(u64, String)>> = {
            let m = metrics.borrow_and_update();
            let id = *m.membership_config.log_id();
            (seen != Some(id)).then(|| {
                seen = Some(id);
                m.membership_config
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.peer_addr.clone()))
                    .collect()
            })
        };
        for (id, addr) in nodes.into_iter().flatten() {
            if !addr.is_empty() {
                p.peers.learn(id, &addr);
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Initialises a single-node server on first start; a restart never re-initialises.
async fn bootstrap_single(raft: &Raft, node_id: u64, addr: SocketAddr) -> Result<(), ServerError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ServerError::Raft(e.to_string()))?;
    if !initialized {
        let mut members = BTreeMap::new();
        members.insert(node_id, Member::new("", addr.to_string()));
        match raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => return Err(ServerError::Raft(format!("initialize: {e}"))),
        }
    } else {
        // A restart starts as a follower (never resuming its old term: see
        // `LogStore::read_vote`); the only voter elects itself now instead of after an
        // election timeout.
        raft.trigger()
            .elect()
            .await
            .map_err(|e| ServerError::Raft(format!("election after restart: {e}")))?;
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
    submit::leader_sync(&p.raft)
        .await
        .map_err(|(_, m)| ServerError::Raft(m))?;
    reset_sessions(p);
    p.shared.set_serving(true);
    Ok(())
}

/// A voter of a new ensemble initialises it once a quorum of the configured voters
/// answers and none of them is initialised yet (initialising is idempotent: every voter
/// writes the same first entry); an observer asks the ensemble to add it. A restarted
/// member is already initialised and does nothing.
async fn join_ensemble(p: Arc<Pipeline>) {
    let me = p.node_id();
    let my_peer = p.config.peer_bind_addr();
    loop {
        if p.raft.is_initialized().await.unwrap_or(true) {
            let known = p
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&me)
                .is_some();
            if known || !p.config.observer {
                return;
            }
        }
        if p.config.observer {
            for addr in p.config.peers.values() {
                let change = MembershipChange::AddObserver {
                    id: me,
                    peer_addr: my_peer.clone(),
                };
                match p
                    .peers
                    .call(
                        addr,
                        &PeerRequest::Membership(change),
                        Duration::from_secs(30),
                    )
                    .await
                {
                    Ok(PeerReply::Membership(Ok(()))) => {
                        tracing::info!(id = me, "joined the ensemble as an observer");
                        return;
                    }
                    Ok(other) => tracing::debug!(?other, "observer join not accepted yet"),
                    Err(e) => tracing::debug!("observer join: {e}"),
                }
            }
        } else {
            let mut members = BTreeMap::new();
            let mut answered = 1; // this node
            let mut someone_initialized = false;
            for (&id, addr) in &p.config.peers {
                if id == me {
                    members.insert(id, Member::new(addr.clone(), p.client_addr.clone()));
                    continue;
                }
                match p
                    .peers
                    .call(addr, &PeerRequest::Status, Duration::from_millis(500))
                    .await
                {
                    Ok(PeerReply::Status(s)) => {
                        answered += 1;
                        someone_initialized |= s.initialized;
                        members.insert(id, Member::new(addr.clone(), s.client_addr));
                    }
                    _ => {
                        members.insert(id, Member::new(addr.clone(), ""));
                    }
                }
            }
            if someone_initialized {
                tracing::info!("the ensemble is already initialised; waiting for the leader");
                return;
            }
            if answered * 2 > p.config.peers.len() {
                match p.raft.initialize(members).await {
                    Ok(()) => {
                        tracing::info!(voters = p.config.peers.len(), "initialised the ensemble")
                    }
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => tracing::warn!("initialise: {e}"),
                }
                return;
            }
            tracing::info!(
                answered,
                voters = p.config.peers.len(),
                "waiting for a quorum of voters to bootstrap"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A follower or observer reports the sessions it heard from to the leader, which
/// decides expiry.
async fn report_sessions(p: Arc<Pipeline>) {
    let period = Duration::from_millis((p.config.tick_ms / 2).clamp(10, 500));
    let mut since = p.shared.tracker.now_ms();
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if is_leader(&p) {
            since = p.shared.tracker.now_ms();
            continue;
        }
        let Some((_, leader)) = current_leader(&p) else {
            continue;
        };
        let now = p.shared.tracker.now_ms();
        let sessions = p.shared.tracker.touched_since(since);
        if sessions.is_empty() {
            since = now;
            continue;
        }
        match p
            .peers
            .call(&leader.peer_addr, &PeerRequest::Touch(sessions), period * 4)
            .await
        {
            Ok(_) => since = now,
            Err(e) => tracing::debug!("session report to the leader failed: {e}"),
        }
    }
}

/// Takes a snapshot (and so purges the log, which is also kept in memory) after every
/// `snapshot_every` applied operations, like ZooKeeper's `snapCount`. Counted in
/// operations, not raft entries: one entry carries a whole batch of writes, so a count of
/// entries would let the in-memory log grow with the batch size.
async fn snapshot_by_ops(p: Arc<Pipeline>) {
    let every = p.config.snapshot_every.max(1);
    let mut applied = p.shared.applied.subscribe();
    let mut last = 0u64;
    loop {
        if applied.changed().await.is_err() {
            return;
        }
        let ops = p.shared.applied_ops.load(Ordering::Relaxed);
        if ops.saturating_sub(last) >= every {
            last = ops;
            if let Err(e) = p.raft.trigger().snapshot().await {
                tracing::warn!("cannot trigger a snapshot: {e}");
            }
        }
    }
}

/// A follower that stops hearing from its leader probes the leader's peer port; if the
/// connection is refused, the leader's process is gone (crashed, killed), and waiting
/// out the election timeout and the leader lease only delays the inevitable: it starts
/// an election at once. Partitions (no answer at all) are left to the normal timeouts.
/// Starting an election early is always safe in raft; this only shortens failover.
async fn watch_leader_process(p: Arc<Pipeline>) {
    let heartbeat = Duration::from_millis(p.config.heartbeat_ms);
    let mut tick = tokio::time::interval(heartbeat / 4);
    let mut triggered_for: Option<(u64, u64)> = None;
    loop {
        tick.tick().await;
        let m = p.raft.metrics().borrow().clone();
        if m.state != ServerState::Follower {
            continue;
        }
        let Some(leader) = m.current_leader else {
            continue;
        };
        if triggered_for == Some((m.current_term, leader)) {
            continue;
        }
        let silent = p
            .shared
            .last_leader_contact()
            .is_none_or(|t| t.elapsed() > heartbeat);
        if !silent {
            continue;
        }
        let Some(member) = m.membership_config.membership().get_node(&leader).cloned() else {
            continue;
        };
        let refused = probe_refused(&member.peer_addr, heartbeat).await;
        if !refused {
            continue;
        }
        triggered_for = Some((m.current_term, leader));
        // The surviving voters detect the death at about the same time. If all of them
        // simply started an election, they would split the vote; and a lone candidate
        // is refused by voters still inside the dead leader's lease. So, by rank among
        // the surviving voters: the others become candidates after `step` (which ends
        // their lease), and the first survivor asks again one step later, with a higher
        // term, which they then grant.
        // Rank the surviving voters by how complete their logs are (only the most
        // complete can win), then by id.
        let me = p.node_id();
        let mut survivors: Vec<(std::cmp::Reverse<u64>, u64)> =
            vec![(std::cmp::Reverse(m.last_log_index.unwrap_or(0)), me)];
        let others: Vec<(u64, Member)> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != leader && *id != me)
            .filter_map(|id| {
                m.membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| (id, n.clone()))
            })
            .collect();
        let asks = others.iter().map(|(id, node)| {
            let peers = p.peers.clone();
            let addr = node.peer_addr.clone();
            let id = *id;
            async move {
                match peers.call(&addr, &PeerRequest::Status, heartbeat).await {
                    Ok(PeerReply::Status(s)) => Some((std::cmp::Reverse(s.last_log_index), id)),
                    _ => None,
                }
            }
        });
        survivors.extend(futures::future::join_all(asks).await.into_iter().flatten());
        survivors.sort_unstable();
        let Some(rank) = survivors.iter().position(|(_, id)| *id == me) else {
            continue;
        };
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == me)
        {
            continue;
        }
        tracing::info!(
            leader,
            term = m.current_term,
            rank,
            "the leader's process is gone; starting an election now"
        );
        let step = (heartbeat / 5).max(Duration::from_millis(5));
        let dead_term = m.current_term;
        let new_leader = |p: &Pipeline| {
            let now = p.raft.metrics().borrow().clone();
            now.state == ServerState::Leader || now.current_leader.is_some_and(|l| l != leader)
        };
        if rank == 0 {
            // Ask, and wait for the round's answers before asking again with a higher
            // term: answers to an older term are discarded, so re-asking faster than a
            // vote round trip (two vote fsyncs on a loaded disk) never wins. Before each
            // round, look at the others afresh (our own metrics lag while our raft core
            // waits on the disk): never ask again once anyone leads or holds our vote
            // for a newer term (that would depose it), and hand over to a survivor whose
            // log got ahead of ours (it won a round and appended; we can no longer win).
            let give_up = tokio::time::Instant::now()
                + Duration::from_millis(p.config.election_timeout_ms.1 * 2);
            while tokio::time::Instant::now() < give_up && !new_leader(&p) {
                if voted_for_another(&p, dead_term)
                    && await_round(&p, leader, dead_term, heartbeat).await
                {
                    continue;
                }
                match survey(&p, &others, leader, dead_term, heartbeat).await {
                    Survey::Led => break,
                    Survey::Ahead(addr) => {
                        tracing::info!(%addr, "a survivor's log is ahead of ours; asking it to campaign");
                        let _ = p.peers.call(&addr, &PeerRequest::Campaign, heartbeat).await;
                        break;
                    }
                    // The other holds a vote for us: our answer is on its way (a slow
                    // disk delays it); asking again would only discard it.
                    Survey::GrantedUs => {
                        await_round(&p, leader, dead_term, heartbeat).await;
                        continue;
                    }
                    Survey::Open { behind } => {
                        // The survey took a round trip: look again at what happened
                        // meanwhile. A vote for another candidate whose log is behind
                        // ours is not one we granted (a split round's loser adopts the
                        // winner's vote): that one cannot win, so we ask anyway.
                        let granted = p.raft.metrics().borrow().vote.leader_id().voted_for();
                        if new_leader(&p)
                            || (voted_for_another(&p, dead_term)
                                && granted.is_some_and(|c| !behind.contains(&c)))
                        {
                            continue;
                        }
                    }
                }
                let _ = p.raft.trigger().elect().await;
                await_round(&p, leader, dead_term, heartbeat).await;
            }
        } else {
            // Become a candidate once (which ends our lease of the dead leader, so we can
            // grant the first-ranked survivor's next round), unless we already granted
            // someone's newer round.
            tokio::time::sleep(step).await;
            if !new_leader(&p) && !voted_for_another(&p, dead_term) {
                tracing::info!("survivor becomes a candidate");
                let _ = p.raft.trigger().elect().await;
            }
        }
    }
}

/// Whether a connection to `addr` is refused (no process listens there), within `within`.
async fn probe_refused(addr: &str, within: Duration) -> bool {
    #[cfg(feature = "simulation")]
    if crate::sim::active() {
        return crate::sim::probe_refused(addr, within).await;
    }
    let probe = tokio::time::timeout(within, tokio::net::TcpStream::connect(addr)).await;
    matches!(&probe, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// A client or peer port: a real TCP listener, or a simulated one inside a simulation.
enum Listener {
    Tokio(TcpListener),
    #[cfg(feature = "simulation")]
    Sim(turmoil::net::TcpListener),
}

impl Listener {
    async fn bind(addr: &str) -> Result<Listener, ServerError> {
        let bind_err = |e| ServerError::Bind {
            addr: addr.to_string(),
            source: e,
        };
        #[cfg(feature = "simulation")]
        if crate::sim::active() {
            return crate::sim::bind(addr)
                .await
                .map(Listener::Sim)
                .map_err(bind_err);
        }
        TcpListener::bind(addr)
            .await
            .map(Listener::Tokio)
            .map_err(bind_err)
    }

    fn local_addr(&self, addr: &str) -> Result<SocketAddr, ServerError> {
        let r = match self {
            Listener::Tokio(l) => l.local_addr(),
            #[cfg(feature = "simulation")]
            Listener::Sim(l) => l.local_addr(),
        };
        r.map_err(|e| ServerError::Bind {
            addr: addr.to_string(),
            source: e,
        })
    }
}

/// Whether this node's vote is for another candidate in a term after `dead_term`: a
/// round is under way that we granted.
fn voted_for_another(p: &Pipeline, dead_term: u64) -> bool {
    let m = p.raft.metrics().borrow().clone();
    let id = m.vote.leader_id();
    id.get_term() > dead_term && id.voted_for().is_some_and(|v| v != p.node_id())
}

/// Waits up to `within` for the election round under way to settle: someone (maybe we)
/// leads, or our vote moved to a newer term. Returns whether it settled.
async fn await_round(p: &Pipeline, old_leader: u64, dead_term: u64, within: Duration) -> bool {
    let mut rx = p.raft.metrics();
    let start_vote = rx.borrow().vote;
    let settled = |m: &openraft::RaftMetrics<u64, Member>| {
        m.state == ServerState::Leader
            || m.current_leader.is_some_and(|l| l != old_leader)
            || (m.vote != start_vote
                && m.vote.leader_id().get_term() > dead_term
                && m.vote.leader_id().voted_for() != Some(p.node_id()))
    };
    tokio::time::timeout(within, async {
        loop {
            if settled(&rx.borrow_and_update()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await
    .is_ok()
}

/// What the other survivors say between election rounds.
enum Survey {
    /// One of them leads (or follows a leader other than the dead one).
    Led,
    /// This one's log is longer than ours: only it can win.
    Ahead(String),
    /// One of them voted for us in a term after the dead leader's.
    GrantedUs,
    /// Nobody leads; ours is the most complete log. `behind`: the ids whose logs are
    /// shorter than ours.
    Open { behind: Vec<u64> },
}

/// Asks each of `others` for its status (bounded by `within`).
async fn survey(
    p: &Pipeline,
    others: &[(u64, Member)],
    old: u64,
    dead_term: u64,
    within: Duration,
) -> Survey {
    let mine = p.raft.metrics().borrow().last_log_index.unwrap_or(0);
    let asks = others.iter().map(|(_, node)| {
        let peers = p.peers.clone();
        let addr = node.peer_addr.clone();
        async move {
            match peers.call(&addr, &PeerRequest::Status, within).await {
                Ok(PeerReply::Status(s)) => Some((addr, s)),
                _ => None,
            }
        }
    });
    let answers: Vec<_> = futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect();
    if answers
        .iter()
        .any(|(_, s)| s.role == "leader" || s.leader.is_some_and(|l| l != old))
    {
        return Survey::Led;
    }
    // (A vote "for us" from a server whose log is ahead is not a grant: a deposed
    // leader adopts the higher vote it is shown.)
    if let Some((addr, _)) = answers
        .iter()
        .filter(|(_, s)| s.last_log_index > mine)
        .max_by_key(|(_, s)| s.last_log_index)
    {
        return Survey::Ahead(addr.clone());
    }
    if answers
        .iter()
        .any(|(_, s)| s.term > dead_term && s.voted_for == Some(p.node_id()))
    {
        return Survey::GrantedUs;
    }
    Survey::Open {
        behind: answers
            .iter()
            .filter(|(_, s)| s.last_log_index < mine)
            .map(|(_, s)| s.id)
            .collect(),
    }
}

fn current_leader(p: &Pipeline) -> Option<(u64, Member)> {
    let m = p.raft.metrics().borrow().clone();
    let id = m.current_leader?;
    let node = m.membership_config.membership().get_node(&id)?.clone();
    Some((id, node))
}

/// Serve clients only while this node can: a leader with a live quorum, or a follower
/// or observer that hears from its leader. Otherwise close every client connection (the
/// clients move to another server) and refuse new ones: no writes are accepted and no
/// stale reads are served for longer than about two election timeouts.
async fn monitor_serving(p: Arc<Pipeline>) {
    // Long enough to ride out an ordinary election without dropping clients, well
    // within the smallest session timeout (two ticks).
    let bound = Duration::from_millis((p.config.election_timeout_ms.1 * 2).max(p.config.tick_ms));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    // (term, when this node became its leader): a new leader has no quorum ack yet.
    let mut leading_since: Option<(u64, tokio::time::Instant)> = None;
    loop {
        tick.tick().await;
        let m = p.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            if leading_since.is_none_or(|(term, _)| term != m.current_term) {
                leading_since = Some((m.current_term, tokio::time::Instant::now()));
            }
        } else {
            leading_since = None;
        }
        let member = !p.config.clustered()
            || m.membership_config
                .membership()
                .get_node(&p.node_id())
                .is_some();
        let ok = member
            && match m.state {
                ServerState::Leader => {
                    !p.config.clustered()
                        || match m.millis_since_quorum_ack {
                            Some(ms) => u128::from(ms) <= bound.as_millis(),
                            None => leading_since.is_some_and(|(_, t)| t.elapsed() <= bound),
                        }
                }
                // A candidate keeps serving reads (writes fail until a leader is
                // elected) for as long as a follower that lost its leader would.
                ServerState::Follower | ServerState::Learner | ServerState::Candidate => {
                    // Between a step-down and the next leader's first heartbeat the
                    // leader is briefly unknown: the contact bound covers that too.
                    p.shared
                        .last_leader_contact()
                        .is_some_and(|t| t.elapsed() <= bound)
                }
                _ => false,
            };
        let was = p.shared.set_serving(ok);
        if was && !ok {
            tracing::warn!(state = ?m.state, "lost the leader or the quorum: closing client connections until it is back");
            p.shared.watches.close_all();
        } else if !was && ok {
            tracing::info!(state = ?m.state, leader = ?m.current_leader, "serving clients");
        }
    }
}

fn reset_sessions(p: &Pipeline) {
    let sessions = p.shared.tree.read().sessions();
    p.shared
        .tracker
        .reset(sessions.into_iter().map(|(id, info)| (id, info.timeout_ms)));
}

fn is_leader(p: &Pipeline) -> bool {
    p.raft.metrics().borrow().state == ServerState::Leader
}

/// No term yet: session expiry is not armed.
const NO_TERM: u64 = u64::MAX;

/// When this node (again) becomes leader, session deadlines restart from now; then
/// `armed` holds the term, which lets [`expire_sessions`] run. Keyed on the term, not on
/// a state transition: the metrics channel only shows the latest state, so a step-down
/// and re-election can look like staying leader.
async fn follow_leadership(p: Arc<Pipeline>, armed: Arc<AtomicU64>) {
    let mut metrics = p.raft.metrics();
    loop {
        let (leader, term) = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader, m.current_term)
        };
        if leader
            && armed.load(Ordering::SeqCst) != term
            && submit::leader_sync(&p.raft).await.is_ok()
        {
            reset_sessions(&p);
            armed.store(term, Ordering::SeqCst);
            tracing::info!(term, "became leader; session deadlines restarted");
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// The leader closes sessions not heard from within their timeout — only once it has
/// restarted every session's deadline in its current term (`armed`): until then its
/// clocks are a follower's, which never saw the sessions connected to other servers,
/// and it would expire live sessions just after winning an election.
async fn expire_sessions(p: Arc<Pipeline>, armed: Arc<AtomicU64>) {
    let period = Duration::from_millis((p.config.tick_ms / 2).clamp(10, 250));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let (leader, term) = {
            let m = p.raft.metrics();
            let m = m.borrow();
            (m.state == ServerState::Leader, m.current_term)
        };
        if !leader || armed.load(Ordering::SeqCst) != term {
            continue;
        }
        for id in p.shared.tracker.take_expired(tokio::time::Instant::now()) {
            tracing::info!(session = format!("{id:#x}"), "session expired");
            match p
                .proposer
                .write(Command::CloseSession { session: id })
                .await
            {
                Ok(_) => {
                    p.shared.tracker.forget(id);
                    p.shared.watches.kill(id);
                }
                Err((code, msg)) => {
                    tracing::warn!(%code, msg, "could not expire session");
                    p.shared.tracker.unmark(id);
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
