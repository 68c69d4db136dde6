//! Admin HTTP:
//! - `GET /health`: 200 `ok` while this node has a leader and serves, 503 otherwise;
//! - `GET /metrics`: Prometheus text format (requests and latency histograms per op,
//!   sessions, znodes, watches, connections, outstanding requests, bytes in/out, raft
//!   term / commit index / leader, snapshot index, WAL fsync latency histogram and group
//!   commits, log and snapshot bytes on disk);
//! - `GET /status`: the same state as JSON, for humans and scripts.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::admin::fourlw;
use crate::pipeline::Pipeline;
use crate::storage::{SnapshotFiles, Wal};

/// The admin router.
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(pipeline)
}

async fn health(State(p): State<Arc<Pipeline>>) -> (StatusCode, String) {
    let metrics = p.raft.metrics().borrow().clone();
    match metrics.current_leader.filter(|_| p.shared.is_serving()) {
        Some(leader) => (
            StatusCode::OK,
            format!(
                "ok\nnode {} leader {} applied zxid {}\n",
                p.node_id(),
                leader,
                p.shared.applied_zxid()
            ),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not serving: no leader or no quorum\n".to_string(),
        ),
    }
}

/// Point-in-time gauges shared by `/metrics` and `/status`.
struct Gauges {
    znodes: usize,
    ephemerals: usize,
    sessions: usize,
    watches: usize,
    connections: usize,
    outstanding: i64,
    zxid: i64,
    term: u64,
    last_log_index: u64,
    committed_index: u64,
    snapshot_index: u64,
    leader: Option<u64>,
    mode: &'static str,
}

fn gauges(p: &Pipeline) -> Gauges {
    let (znodes, ephemerals, sessions) = {
        let t = p.shared.tree.read();
        (t.node_count(), t.ephemeral_count(), t.sessions().len())
    };
    let raft = p.raft.metrics().borrow().clone();
    Gauges {
        znodes,
        ephemerals,
        sessions,
        watches: p.shared.watches.count(),
        connections: p.shared.metrics.connections().len(),
        outstanding: p.shared.metrics.outstanding.load(Relaxed).max(0),
        zxid: p.shared.applied_zxid(),
        term: raft.current_term,
        last_log_index: raft.last_log_index.unwrap_or(0),
        committed_index: raft.last_applied.map(|l| l.index).unwrap_or(0),
        snapshot_index: raft.snapshot.map(|l| l.index).unwrap_or(0),
        leader: raft.current_leader,
        mode: fourlw::mode(p),
    }
}

/// Bytes of the WAL segments and of the snapshot files on disk (summed now, off the
/// runtime threads); `None` for a size that could not be read.
async fn disk_sizes(p: &Pipeline) -> (Option<u64>, Option<u64>) {
    let dir = p.config.data_dir.clone();
    let sizes = tokio::task::spawn_blocking(move || {
        let read = |what: &str, r: std::io::Result<u64>| {
            r.inspect_err(|e| tracing::warn!(error = %e, "cannot size the {what} files"))
                .ok()
        };
        (
            read("log", Wal::bytes_on_disk(&dir.join("log"))),
            read(
                "snapshot",
                SnapshotFiles::bytes_on_disk(&dir.join("snapshots")),
            ),
        )
    })
    .await;
    sizes.unwrap_or((None, None))
}

async fn metrics(State(p): State<Arc<Pipeline>>) -> impl IntoResponse {
    let (log_bytes, snapshot_bytes) = disk_sizes(&p).await;
    let g = gauges(&p);
    let m = &p.shared.metrics;
    let mut s = String::new();
    let mut gauge = |name: &str, help: &str, v: String| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge("zk_znodes", "Znodes in the tree.", g.znodes.to_string());
    gauge(
        "zk_ephemerals",
        "Ephemeral znodes.",
        g.ephemerals.to_string(),
    );
    gauge(
        "zk_sessions",
        "Open sessions (cluster-wide).",
        g.sessions.to_string(),
    );
    gauge(
        "zk_watches",
        "Watch registrations on this node.",
        g.watches.to_string(),
    );
    gauge(
        "zk_connections",
        "Open client connections (both protocols, handshake done or not).",
        g.connections.to_string(),
    );
    gauge(
        "zk_outstanding_requests",
        "Requests received and not answered.",
        g.outstanding.to_string(),
    );
    gauge(
        "zk_last_applied_zxid",
        "Last applied zxid.",
        g.zxid.to_string(),
    );
    gauge("zk_raft_term", "Current raft term.", g.term.to_string());
    gauge(
        "zk_raft_last_log_index",
        "Last raft log index.",
        g.last_log_index.to_string(),
    );
    gauge(
        "zk_raft_applied_index",
        "Last applied (committed) raft log index.",
        g.committed_index.to_string(),
    );
    gauge(
        "zk_raft_snapshot_index",
        "Raft log index of the last snapshot.",
        g.snapshot_index.to_string(),
    );
    gauge(
        "zk_raft_leader",
        "Id of the current leader (0: none).",
        g.leader.unwrap_or(0).to_string(),
    );
    if let Some(b) = log_bytes {
        gauge(
            "zk_log_bytes",
            "Bytes of write-ahead log segment files on disk.",
            b.to_string(),
        );
    }
    if let Some(b) = snapshot_bytes {
        gauge(
            "zk_snapshot_bytes",
            "Bytes of snapshot files on disk.",
            b.to_string(),
        );
    }
    gauge(
        "zk_uptime_seconds",
        "Seconds since start.",
        m.uptime().as_secs().to_string(),
    );
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter(
        "zk_packets_received_total",
        "Requests received (both protocols).",
        m.packets_received.load(Relaxed),
    );
    counter(
        "zk_packets_sent_total",
        "Replies and watch events sent (both protocols).",
        m.packets_sent.load(Relaxed),
    );
    counter(
        "zk_bytes_received_total",
        "Bytes read from ZooKeeper-protocol clients.",
        m.bytes_in.load(Relaxed),
    );
    counter(
        "zk_bytes_sent_total",
        "Bytes written to ZooKeeper-protocol clients.",
        m.bytes_out.load(Relaxed),
    );
    counter(
        "zk_bad_frames_total",
        "Connections closed for an oversized or malformed frame.",
        m.bad_frames.load(Relaxed),
    );
    counter(
        "zk_four_letter_words_total",
        "Four-letter words answered.",
        m.four_letter_words.load(Relaxed),
    );
    let l = &m.limits;
    for (name, help, v) in [
        (
            "zk_rejected_connections_total",
            "Connections closed at accept: their IP was at --max-client-cnxns.",
            &l.rejected_connections,
        ),
        (
            "zk_throttled_total",
            "Times a connection stopped being read: --max-outstanding-requests in flight.",
            &l.throttled,
        ),
        (
            "zk_watches_refused_total",
            "Watch registrations refused with QuotaExceeded (--max-watches-per-session).",
            &l.watches_refused,
        ),
        (
            "zk_slow_readers_closed_total",
            "Connections closed because their client did not read its replies and events.",
            &l.slow_readers_closed,
        ),
    ] {
        counter(name, help, v.load(Relaxed));
    }
    counter(
        "zk_tls_reloads_total",
        "TLS configurations replaced after their certificate files changed.",
        m.tls_reloads.reloads.load(Relaxed),
    );
    counter(
        "zk_tls_reload_failures_total",
        "Changed TLS certificate files rejected (the previous certificate stayed in use).",
        m.tls_reloads.failures.load(Relaxed),
    );
    m.write_ops(&mut s);
    p.shared.storage.write_prometheus(&mut s);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s)
}

async fn status(State(p): State<Arc<Pipeline>>) -> Json<serde_json::Value> {
    let g = gauges(&p);
    let m = &p.shared.metrics;
    let l = m.latency();
    Json(serde_json::json!({
        "version": fourlw::version(),
        "node_id": p.node_id(),
        "mode": g.mode,
        "leader": g.leader,
        "zxid": g.zxid,
        "znodes": g.znodes,
        "ephemerals": g.ephemerals,
        "sessions": g.sessions,
        "watches": g.watches,
        "connections": g.connections,
        "outstanding_requests": g.outstanding,
        "raft": {
            "term": g.term,
            "last_log_index": g.last_log_index,
            "applied_index": g.committed_index,
            "snapshot_index": g.snapshot_index,
        },
        "latency_ms": { "min": l.min_ms, "avg": l.avg_ms, "max": l.max_ms },
        "packets": {
            "received": m.packets_received.load(Relaxed),
            "sent": m.packets_sent.load(Relaxed),
        },
        "bytes": {
            "received": m.bytes_in.load(Relaxed),
            "sent": m.bytes_out.load(Relaxed),
        },
        "uptime_ms": u64::try_from(m.uptime().as_millis()).unwrap_or(u64::MAX),
        "role": crate::api::peer::status(&p).role,
        "serving": p.shared.is_serving(),
        "liveness": super::status::liveness(&p),
        "members": super::status::members(&p).await,
    }))
}
