//! ZooKeeper's four-letter words on the client port: `ruok`, `stat`, `srvr`, `mntr`,
//! `conf`, `cons`, `wchs`, `envi`, `isro`, in ZooKeeper's output formats where tools
//! parse them. Only words in the allow-list (`four_letter_words`, ZooKeeper's
//! `4lw.commands.whitelist`) answer; a refused word gets ZooKeeper's one-line refusal.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use openraft::ServerState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pipeline::Pipeline;

/// The words this server knows.
pub const WORDS: &[&str] = &[
    "ruok", "stat", "srvr", "mntr", "conf", "cons", "wchs", "envi", "isro",
];

/// The version string reported to tools (`Zookeeper version:`, `zk_version`): the
/// ZooKeeper protocol level we speak, then our own version.
pub fn version() -> String {
    format!(
        "3.9.2-zk-server-{}, built on unknown",
        env!("CARGO_PKG_VERSION")
    )
}

/// ZooKeeper's name of this node's role: `standalone` (a single voter), `leader`,
/// `follower`, `observer` (a raft learner), or `looking`.
pub fn mode(p: &Pipeline) -> &'static str {
    let m = p.raft.metrics().borrow().clone();
    let voters = m.membership_config.membership().voter_ids().count();
    match m.state {
        ServerState::Leader if voters <= 1 => "standalone",
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Learner => "observer",
        ServerState::Candidate | ServerState::Shutdown => "looking",
    }
}

fn allowed(p: &Pipeline, word: &str) -> bool {
    p.config
        .four_letter_words
        .iter()
        .any(|w| w == "*" || w == word)
}

/// The answer to `word` (allow-list applied).
pub fn answer(p: &Pipeline, word: &str) -> String {
    if !WORDS.contains(&word) {
        return format!("{word} is not a known four-letter word\n");
    }
    if !allowed(p, word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    p.shared.metrics.four_letter_words.fetch_add(1, Relaxed);
    match word {
        "ruok" => "imok".to_string(),
        "isro" => "rw".to_string(),
        "srvr" => server_stats(p, false),
        "stat" => server_stats(p, true),
        "mntr" => monitor(p),
        "conf" => conf(p),
        "cons" => connections(p),
        "wchs" => {
            let (sessions, paths, total) = p.shared.watches.summary();
            format!("{sessions} connections watching {paths} paths\nTotal watches:{total}\n")
        }
        "envi" => environment(p),
        _ => String::new(),
    }
}

/// Reads the word off `socket`, answers, and closes.
pub async fn serve<S>(p: Arc<Pipeline>, mut socket: S, word: [u8; 4])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = [0u8; 4];
    if socket.read_exact(&mut buf).await.is_err() {
        return;
    }
    let word = String::from_utf8_lossy(&word).to_string();
    let text = answer(&p, &word);
    let _ = socket.write_all(text.as_bytes()).await;
    let _ = socket.shutdown().await;
    // Read what the client sent after the word (`echo ruok | nc` adds a newline) before
    // closing: closing with unread bytes would reset the connection, and a reset can
    // discard the answer before the client reads it.
    let mut rest = [0u8; 256];
    let drain = async {
        let mut total = 0;
        while total < 4096 {
            match socket.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
}

fn server_stats(p: &Pipeline, with_clients: bool) -> String {
    let m = &p.shared.metrics;
    let mut s = String::new();
    let _ = writeln!(s, "Zookeeper version: {}", version());
    if with_clients {
        s.push_str("Clients:\n");
        for c in m.connections() {
            let _ = writeln!(
                s,
                " /{}[1](queued={},recved={},sent={})",
                c.peer,
                c.outstanding.load(Relaxed).max(0),
                c.received.load(Relaxed),
                c.sent.load(Relaxed)
            );
        }
        s.push('\n');
    }
    let l = m.latency();
    let _ = writeln!(
        s,
        "Latency min/avg/max: {:.0}/{:.4}/{:.0}",
        l.min_ms, l.avg_ms, l.max_ms
    );
    let _ = writeln!(s, "Received: {}", m.packets_received.load(Relaxed));
    let _ = writeln!(s, "Sent: {}", m.packets_sent.load(Relaxed));
    let _ = writeln!(s, "Connections: {}", m.connections().len());
    let _ = writeln!(s, "Outstanding: {}", m.outstanding.load(Relaxed).max(0));
    let _ = writeln!(s, "Zxid: {:#x}", p.shared.applied_zxid());
    let _ = writeln!(s, "Mode: {}", mode(p));
    let _ = writeln!(s, "Node count: {}", p.shared.tree.read().node_count());
    s
}

fn monitor(p: &Pipeline) -> String {
    let m = &p.shared.metrics;
    let l = m.latency();
    let (nodes, ephemerals, size) = {
        let t = p.shared.tree.read();
        (
            t.node_count(),
            t.ephemeral_count(),
            t.approximate_data_size(),
        )
    };
    let raft = p.raft.metrics().borrow().clone();
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", version()),
        ("zk_server_state", mode(p).to_string()),
        ("zk_avg_latency", format!("{:.4}", l.avg_ms)),
        ("zk_max_latency", format!("{:.0}", l.max_ms)),
        ("zk_min_latency", format!("{:.0}", l.min_ms)),
        (
            "zk_packets_received",
            m.packets_received.load(Relaxed).to_string(),
        ),
        ("zk_packets_sent", m.packets_sent.load(Relaxed).to_string()),
        (
            "zk_num_alive_connections",
            m.connections().len().to_string(),
        ),
        (
            "zk_outstanding_requests",
            m.outstanding.load(Relaxed).max(0).to_string(),
        ),
        ("zk_znode_count", nodes.to_string()),
        ("zk_watch_count", p.shared.watches.count().to_string()),
        ("zk_ephemerals_count", ephemerals.to_string()),
        ("zk_approximate_data_size", size.to_string()),
        (
            "zk_global_sessions",
            p.shared.tree.read().sessions().len().to_string(),
        ),
        ("zk_uptime", m.uptime().as_millis().to_string()),
        ("zk_last_zxid", p.shared.applied_zxid().to_string()),
        ("zk_raft_term", raft.current_term.to_string()),
        ("zk_bytes_received", m.bytes_in.load(Relaxed).to_string()),
        ("zk_bytes_sent", m.bytes_out.load(Relaxed).to_string()),
        (
            "zk_fsync_threshold_exceed_count",
            p.shared.storage.fsync_threshold_exceeded().to_string(),
        ),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{k}\t{v}");
    }
    if let Some(rep) = &raft.replication {
        let _ = writeln!(s, "zk_followers\t{}", rep.len().saturating_sub(1));
        let _ = writeln!(s, "zk_synced_followers\t{}", rep.len().saturating_sub(1));
    }
    s
}

fn conf(p: &Pipeline) -> String {
    let c = &p.config;
    let mut s = String::new();
    let port = c.client_addr.rsplit(':').next().unwrap_or("");
    let _ = writeln!(s, "clientPort={port}");
    let _ = writeln!(s, "clientPortAddress={}", c.client_addr);
    let _ = writeln!(s, "dataDir={}", c.data_dir.display());
    let _ = writeln!(s, "dataLogDir={}", c.data_dir.join("log").display());
    let _ = writeln!(s, "tickTime={}", c.tick_ms);
    let _ = writeln!(s, "maxClientCnxns={}", c.limits.max_client_cnxns);
    let _ = writeln!(s, "minSessionTimeout={}", c.min_session_timeout_ms());
    let _ = writeln!(s, "maxSessionTimeout={}", c.max_session_timeout_ms());
    let _ = writeln!(s, "serverId={}", c.node_id);
    let _ = writeln!(s, "jute.maxbuffer={}", c.max_frame_bytes);
    let _ = writeln!(
        s,
        "4lw.commands.whitelist={}",
        c.four_letter_words.join(",")
    );
    s
}

fn connections(p: &Pipeline) -> String {
    let mut s = String::new();
    for c in p.shared.metrics.connections() {
        let _ = writeln!(
            s,
            " /{}[1](queued={},recved={},sent={},sid={:#x},proto={},est={}ms)",
            c.peer,
            c.outstanding.load(Relaxed).max(0),
            c.received.load(Relaxed),
            c.sent.load(Relaxed),
            c.session.load(Relaxed),
            c.protocol,
            c.since.elapsed().as_millis()
        );
    }
    s.push('\n');
    s
}

fn environment(p: &Pipeline) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let mut s = String::from("Environment:\n");
    let _ = writeln!(s, "zookeeper.version={}", version());
    let _ = writeln!(s, "host.name={host}");
    let _ = writeln!(s, "os.name={}", std::env::consts::OS);
    let _ = writeln!(s, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(s, "user.name={}", std::env::var("USER").unwrap_or_default());
    let _ = writeln!(s, "user.dir={dir}");
    let _ = writeln!(s, "server.id={}", p.config.node_id);
    s
}
