//! Server counters for `/metrics`, `/status` and the four-letter words. Everything on
//! the request path is a relaxed atomic; the only lock is the connection table, taken
//! when a connection opens or closes and when an operator lists connections.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Operation labels, ZooKeeper's names; anything else counts as `other`.
pub const OPS: &[&str] = &[
    "create",
    "create2",
    "createContainer",
    "createTTL",
    "delete",
    "exists",
    "getData",
    "setData",
    "getACL",
    "setACL",
    "getChildren",
    "getChildren2",
    "sync",
    "ping",
    "check",
    "multi",
    "multiRead",
    "setWatches",
    "setWatches2",
    "addWatch",
    "removeWatches",
    "checkWatches",
    "getEphemerals",
    "getAllChildrenNumber",
    "auth",
    "whoAmI",
    "closeSession",
    "other",
];

/// Upper bounds of the latency histogram buckets, in microseconds (+Inf is implicit).
pub const BUCKETS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

#[derive(Default)]
struct OpStats {
    count: AtomicU64,
    errors: AtomicU64,
    sum_us: AtomicU64,
    buckets: [AtomicU64; 14],
}

/// One open client connection (either protocol).
pub struct ConnStats {
    /// The client's address.
    pub peer: SocketAddr,
    /// `zookeeper` (jute) or `native` (gRPC).
    pub protocol: &'static str,
    /// The session id once connected (0 before).
    pub session: AtomicI64,
    /// Requests received.
    pub received: AtomicU64,
    /// Packets sent (replies and events).
    pub sent: AtomicU64,
    /// Requests not answered yet.
    pub outstanding: AtomicI64,
    /// When it connected.
    pub since: Instant,
}

/// Removes its connection from the table when dropped.
pub struct ConnGuard {
    metrics: Arc<Metrics>,
    id: u64,
    /// The connection's counters.
    pub stats: Arc<ConnStats>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.metrics.conns.lock().remove(&self.id);
    }
}

/// How often the per-client limits acted (`crate::limits`).
#[derive(Debug, Default)]
pub struct LimitCounters {
    /// Connections closed at accept: their IP was at `--max-client-cnxns`.
    pub rejected_connections: AtomicU64,
    /// Times a connection stopped being read: `--max-outstanding-requests` in flight.
    pub throttled: AtomicU64,
    /// Watch registrations refused: the session was at `--max-watches-per-session`.
    pub watches_refused: AtomicU64,
    /// Connections closed because their client did not read its replies and events.
    pub slow_readers_closed: AtomicU64,
}

/// The node's counters.
pub struct Metrics {
    started: Instant,
    /// Requests received (all protocols).
    pub packets_received: AtomicU64,
    /// Replies and events sent.
    pub packets_sent: AtomicU64,
    /// Bytes read from ZooKeeper-protocol clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to ZooKeeper-protocol clients.
    pub bytes_out: AtomicU64,
    /// Requests received and not yet answered.
    pub outstanding: AtomicI64,
    /// Connections closed for an oversized or malformed frame.
    pub bad_frames: AtomicU64,
    /// Four-letter words answered.
    pub four_letter_words: AtomicU64,
    /// Per-client limits at work (`crate::limits`).
    pub limits: LimitCounters,
    /// TLS certificate reloads (`crate::tls::reload`).
    pub tls_reloads: Arc<crate::tls::reload::ReloadCounters>,
    min_us: AtomicU64,
    max_us: AtomicU64,
    ops: Vec<OpStats>,
    conns: Mutex<BTreeMap<u64, Arc<ConnStats>>>,
    next_conn: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            bad_frames: AtomicU64::new(0),
            four_letter_words: AtomicU64::new(0),
            limits: LimitCounters::default(),
            tls_reloads: Arc::default(),
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
            ops: OPS.iter().map(|_| OpStats::default()).collect(),
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }
}

fn op_index(op: &str) -> usize {
    OPS.iter().position(|o| *o == op).unwrap_or(OPS.len() - 1)
}

/// Latency summary (ms), as `srvr` prints it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Smallest.
    pub min_ms: f64,
    /// Mean.
    pub avg_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Metrics {
    /// Counters at zero.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Time since the node started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A request was received.
    pub fn request_received(&self, conn: &ConnStats) {
        self.packets_received.fetch_add(1, Relaxed);
        self.outstanding.fetch_add(1, Relaxed);
        conn.received.fetch_add(1, Relaxed);
        conn.outstanding.fetch_add(1, Relaxed);
    }

    /// A request of `op` was answered after `elapsed`, with ZooKeeper error `err`.
    pub fn request_done(&self, conn: &ConnStats, op: &str, elapsed: Duration, err: i32) {
        self.outstanding.fetch_sub(1, Relaxed);
        conn.outstanding.fetch_sub(1, Relaxed);
        self.packet_sent(conn);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let s = &self.ops[op_index(op)];
        s.count.fetch_add(1, Relaxed);
        if err != 0 {
            s.errors.fetch_add(1, Relaxed);
        }
        s.sum_us.fetch_add(us, Relaxed);
        let b = BUCKETS_US
            .iter()
            .position(|&ub| us <= ub)
            .unwrap_or(BUCKETS_US.len());
        if let Some(c) = s.buckets.get(b) {
            c.fetch_add(1, Relaxed);
        }
        self.min_us.fetch_min(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    /// A packet that answers no request (an event) was sent.
    pub fn packet_sent(&self, conn: &ConnStats) {
        self.packets_sent.fetch_add(1, Relaxed);
        conn.sent.fetch_add(1, Relaxed);
    }

    /// Registers an open connection; it is listed until the guard drops.
    pub fn open_connection(
        self: &Arc<Self>,
        peer: SocketAddr,
        protocol: &'static str,
    ) -> ConnGuard {
        let id = self.next_conn.fetch_add(1, Relaxed);
        let stats = Arc::new(ConnStats {
            peer,
            protocol,
            session: AtomicI64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            since: Instant::now(),
        });
        self.conns.lock().insert(id, stats.clone());
        ConnGuard {
            metrics: self.clone(),
            id,
            stats,
        }
    }

    /// The open connections.
    pub fn connections(&self) -> Vec<Arc<ConnStats>> {
        self.conns.lock().values().cloned().collect()
    }

    /// Min/avg/max request latency since start.
    pub fn latency(&self) -> LatencySummary {
        let (mut n, mut sum) = (0u64, 0u64);
        for s in &self.ops {
            n += s.count.load(Relaxed);
            sum = sum.saturating_add(s.sum_us.load(Relaxed));
        }
        let min = self.min_us.load(Relaxed);
        LatencySummary {
            min_ms: if n == 0 { 0.0 } else { min as f64 / 1000.0 },
            avg_ms: if n == 0 {
                0.0
            } else {
                sum as f64 / n as f64 / 1000.0
            },
            max_ms: self.max_us.load(Relaxed) as f64 / 1000.0,
        }
    }

    /// The per-op counters and histograms in Prometheus text format.
    pub fn write_ops(&self, out: &mut String) {
        out.push_str("# HELP zk_requests_total Requests answered, by operation.\n");
        out.push_str("# TYPE zk_requests_total counter\n");
        for (name, s) in OPS.iter().zip(&self.ops) {
            let _ = writeln!(
                out,
                "zk_requests_total{{op=\"{name}\"}} {}",
                s.count.load(Relaxed)
            );
        }
        out.push_str("# HELP zk_request_errors_total Requests answered with an error code.\n");
        out.push_str("# TYPE zk_request_errors_total counter\n");
        for (name, s) in OPS.iter().zip(&self.ops) {
            let _ = writeln!(
                out,
                "zk_request_errors_total{{op=\"{name}\"}} {}",
                s.errors.load(Relaxed)
            );
        }
        out.push_str("# HELP zk_request_latency_seconds Time from receiving a request to queueing its reply.\n");
        out.push_str("# TYPE zk_request_latency_seconds histogram\n");
        for (name, s) in OPS.iter().zip(&self.ops) {
            let count = s.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (i, ub) in BUCKETS_US.iter().enumerate() {
                cumulative += s.buckets[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "zk_request_latency_seconds_bucket{{op=\"{name}\",le=\"{}\"}} {cumulative}",
                    *ub as f64 / 1e6
                );
            }
            let _ = writeln!(
                out,
                "zk_request_latency_seconds_bucket{{op=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "zk_request_latency_seconds_sum{{op=\"{name}\"}} {}",
                s.sum_us.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "zk_request_latency_seconds_count{{op=\"{name}\"}} {count}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms() {
        let m = Arc::new(Metrics::new());
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let g = m.open_connection(peer, "zookeeper");
        m.request_received(&g.stats);
        m.request_done(&g.stats, "getData", Duration::from_micros(300), 0);
        m.request_received(&g.stats);
        m.request_done(&g.stats, "weird", Duration::from_millis(3), -101);
        assert_eq!(m.connections().len(), 1);
        let mut s = String::new();
        m.write_ops(&mut s);
        assert!(s.contains("zk_requests_total{op=\"getData\"} 1"), "{s}");
        assert!(s.contains("zk_request_errors_total{op=\"other\"} 1"), "{s}");
        assert!(s.contains("zk_request_latency_seconds_bucket{op=\"getData\",le=\"0.0005\"} 1"));
        let l = m.latency();
        assert!(l.min_ms > 0.29 && l.max_ms > 2.9, "{l:?}");
        drop(g);
        assert!(m.connections().is_empty());
        assert_eq!(m.outstanding.load(Relaxed), 0);
    }
}
