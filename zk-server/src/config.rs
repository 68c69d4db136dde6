//! Server configuration: command-line flags, an optional TOML file (`--config`), and
//! defaults. Flags win over the file, the file over the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use serde::Deserialize;

use crate::error::ServerError;

/// When the write-ahead log is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// fsync before acknowledging every write batch (group commit). The default.
    #[default]
    Always,
    /// Never fsync. UNSAFE: an acknowledged write can be lost on a crash. For tests only.
    Never,
}

/// Everything one server node needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id (ZooKeeper's `myid`).
    pub node_id: u64,
    /// The ensemble's voting members: id -> peer address. Empty = the single-node
    /// default (no peer port).
    pub peers: BTreeMap<u64, String>,
    /// This node's peer address (raft RPCs, forwarding). Defaults to its entry in
    /// `peers`, else 127.0.0.1:2888.
    pub peer_addr: Option<String>,
    /// Join as an observer (non-voting member that serves reads and sessions).
    pub observer: bool,
    /// Peer address -> address to dial instead (a NAT mapping; tests put fault-injecting
    /// proxies here). Empty: dial peers at their own addresses.
    pub peer_dial: BTreeMap<String, String>,
    /// Where the log and snapshots live.
    pub data_dir: PathBuf,
    /// Client port (native gRPC protocol). Port 0 picks a free port.
    pub client_addr: String,
    /// Admin HTTP (`/health`). Port 0 picks a free port.
    pub admin_addr: String,
    /// fsync policy of the log.
    pub sync: SyncPolicy,
    /// Largest znode value accepted, in bytes.
    pub max_data_bytes: usize,
    /// ZooKeeper's tickTime in ms: session timeouts are clamped to [2, 20] ticks.
    pub tick_ms: u64,
    /// Take a snapshot every this many applied operations (ZooKeeper's snapCount).
    pub snapshot_every: u64,
    /// Roll the log to a new segment file past this size; segments wholly covered by a
    /// snapshot are deleted.
    pub log_segment_bytes: u64,
    /// Extend the last log segment with written zeros in steps of this many bytes, so
    /// that most fsyncs commit no file-size change (0: plain appends).
    pub log_preallocate_bytes: u64,
    /// How often the leader looks for empty containers and expired TTL nodes (ms).
    pub reap_interval_ms: u64,
    /// Raft heartbeat interval (ms).
    pub heartbeat_ms: u64,
    /// Raft election timeout range (ms).
    pub election_timeout_ms: (u64, u64),
    /// ZooKeeper-protocol clients: largest frame accepted (ZooKeeper's jute.maxbuffer
    /// plus slack); a larger one closes that connection.
    pub max_frame_bytes: usize,
    /// Four-letter words answered on the client port (ZooKeeper's
    /// `4lw.commands.whitelist`); `*` allows all.
    pub four_letter_words: Vec<String>,
    /// The super user (ZooKeeper's `zookeeper.DigestAuthenticationProvider.superDigest`):
    /// `user:base64(sha1(user:password))`; a session that `addauth digest`s as it passes
    /// every ACL check. Give the same value to every server of an ensemble.
    pub super_digest: Option<String>,
    /// TLS on the client and peer ports, peer authentication (`[tls]` in the file).
    pub tls: crate::tls::TlsSettings,
    /// Per-client limits (connections per IP, outstanding requests, watches, unsent
    /// replies): see [`crate::limits`].
    pub limits: crate::limits::Limits,
}

/// Default allow-list of four-letter words: the read-only health and status words that
/// monitoring tools use; `cons`, `wchs` and `envi` (client addresses, environment) must
/// be enabled explicitly.
pub const DEFAULT_FOUR_LETTER_WORDS: &str = "ruok,srvr,stat,mntr,conf,isro";

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            peers: BTreeMap::new(),
            peer_addr: None,
            observer: false,
            peer_dial: BTreeMap::new(),
            data_dir: PathBuf::from("./zk-data"),
            client_addr: "127.0.0.1:2181".into(),
            admin_addr: "127.0.0.1:8080".into(),
            sync: SyncPolicy::Always,
            max_data_bytes: 1024 * 1024,
            tick_ms: 2000,
            snapshot_every: 100_000,
            log_segment_bytes: 64 << 20,
            log_preallocate_bytes: crate::storage::wal::DEFAULT_PREALLOCATE_BYTES,
            reap_interval_ms: 1000,
            heartbeat_ms: 50,
            election_timeout_ms: (150, 300),
            max_frame_bytes: crate::zkwire::DEFAULT_MAX_FRAME_BYTES,
            four_letter_words: split_words(DEFAULT_FOUR_LETTER_WORDS),
            super_digest: None,
            tls: crate::tls::TlsSettings::default(),
            limits: crate::limits::Limits::default(),
        }
    }
}

impl Config {
    /// A config for tests: data in `dir`, loopback ports chosen by the OS, fsync off.
    pub fn for_test(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            client_addr: "127.0.0.1:0".into(),
            admin_addr: "127.0.0.1:0".into(),
            sync: SyncPolicy::Never,
            ..Config::default()
        }
    }

    /// Smallest negotiable session timeout (2 ticks).
    pub fn min_session_timeout_ms(&self) -> u32 {
        (self.tick_ms * 2).min(u32::MAX as u64) as u32
    }

    /// True when this node is part of a multi-server ensemble.
    pub fn clustered(&self) -> bool {
        !self.peers.is_empty() || self.observer
    }

    /// The address this node's peer port binds.
    pub fn peer_bind_addr(&self) -> String {
        self.peer_addr
            .clone()
            .or_else(|| self.peers.get(&self.node_id).cloned())
            .unwrap_or_else(|| "127.0.0.1:2888".to_string())
    }

    /// Largest negotiable session timeout (20 ticks).
    pub fn max_session_timeout_ms(&self) -> u32 {
        (self.tick_ms * 20).min(u32::MAX as u64) as u32
    }
}

/// `zk-server` command line.
#[derive(Debug, Parser, Default)]
#[command(
    name = "zk-server",
    version,
    about = "A ZooKeeper-class coordination server on openraft"
)]
pub struct Args {
    /// Run a local ensemble in one process instead of one node (see `dev-cluster --help`).
    #[command(subcommand)]
    pub command: Option<SubCommand>,
    /// This server's id in the ensemble (ZooKeeper's myid) [default: 1]
    #[arg(long, value_name = "N")]
    pub id: Option<u64>,
    /// The voting members: `1=HOST:PORT,2=HOST:PORT,3=HOST:PORT` (peer addresses).
    /// Without it the server is a single node.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub peers: Option<String>,
    /// Peer address to bind [default: this id's entry in --peers, else 127.0.0.1:2888]
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: Option<String>,
    /// Join the ensemble as an observer (serves reads, sessions and watches; never votes)
    #[arg(long)]
    pub observer: bool,
    /// Dial a peer at another address than its own: `PEER=DIAL,...` (peer addresses as in
    /// --peers). For NAT mappings and fault-injecting proxies (zk-chaos routes every peer
    /// link through one) [default: dial peers at their own addresses]
    #[arg(long, value_name = "HOST:PORT=HOST:PORT,...")]
    pub peer_dial: Option<String>,
    /// TOML file with the same keys as the flags (data_dir, client_addr, ...); flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (log and snapshots) [default: ./zk-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Client address (native protocol) [default: 127.0.0.1:2181]
    #[arg(long, value_name = "HOST:PORT")]
    pub client_addr: Option<String>,
    /// Admin HTTP address (/health) [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub admin_addr: Option<String>,
    /// fsync policy; `never` is UNSAFE (acknowledged writes may be lost on a crash) [default: always]
    #[arg(long, value_enum)]
    pub sync: Option<SyncPolicy>,
    /// Largest znode value in bytes [default: 1048576]
    #[arg(long, value_name = "N")]
    pub max_data_bytes: Option<usize>,
    /// Tick in ms; session timeouts are clamped to [2, 20] ticks [default: 2000]
    #[arg(long, value_name = "N")]
    pub tick_ms: Option<u64>,
    /// Snapshot after every N applied operations, as ZooKeeper's snapCount [default: 100000]
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Largest ZooKeeper-protocol frame in bytes [default: 1049599 (jute.maxbuffer + 1 KiB)]
    #[arg(long, value_name = "N")]
    pub max_frame_bytes: Option<usize>,
    /// Comma-separated four-letter words to answer, `*` for all [default: ruok,srvr,stat,mntr,conf,isro]
    #[arg(long, value_name = "WORDS")]
    pub four_letter_words: Option<String>,
    /// Super user digest `user:base64(sha1(user:password))` (bypasses every ACL)
    #[arg(long, value_name = "USER:HASH")]
    pub super_digest: Option<String>,
    #[command(flatten)]
    pub tls: crate::tls::settings::TlsArgs,
    /// Per-client limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The per-client limit flags (see [`crate::limits`]).
#[derive(Debug, clap::Args, Default)]
pub struct LimitArgs {
    /// Concurrent client connections per IP address, all protocols; 0 = unlimited [default: 60]
    #[arg(long, value_name = "N")]
    pub max_client_cnxns: Option<u32>,
    /// Requests one connection may have in flight before the server stops reading it [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_outstanding_requests: Option<usize>,
    /// Watches one session may hold on this server; more fail with QuotaExceeded; 0 = unlimited [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_watches_per_session: Option<usize>,
    /// Unsent replies/events a connection may queue before it is closed as too slow [default: 16384]
    #[arg(long, value_name = "N")]
    pub max_outbound_messages: Option<usize>,
    /// Unsent reply/event bytes a connection may queue before it is closed as too slow [default: 67108864]
    #[arg(long, value_name = "N")]
    pub max_outbound_bytes: Option<usize>,
}

impl LimitArgs {
    fn apply(self, l: &mut crate::limits::Limits) {
        set(&mut l.max_client_cnxns, self.max_client_cnxns);
        set(
            &mut l.max_outstanding_requests,
            self.max_outstanding_requests,
        );
        set(&mut l.max_watches_per_session, self.max_watches_per_session);
        set(&mut l.max_outbound_messages, self.max_outbound_messages);
        set(&mut l.max_outbound_bytes, self.max_outbound_bytes);
    }
}

/// Splits a comma-separated word list.
pub fn split_words(s: &str) -> Vec<String> {
    s.split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// `zk-server` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SubCommand {
    /// Run an ensemble of separate server nodes in this one process (each with its own
    /// ports and data dir) and print the connect string. For local development.
    DevCluster {
        /// Voting members.
        #[arg(long, default_value_t = 3)]
        size: u64,
        /// Observers.
        #[arg(long, default_value_t = 0)]
        observers: u64,
        /// Node i (from 1) uses client port P+i-1, peer port P+100+i-1, admin port P+200+i-1.
        #[arg(long, default_value_t = 2181)]
        base_port: u16,
        /// Node i keeps its data in DIR/node-i.
        #[arg(long, default_value = "./zk-dev-cluster")]
        data_dir: PathBuf,
    },
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_peers(s: &str) -> Result<BTreeMap<u64, String>, ServerError> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').ok_or_else(|| ServerError::Config {
            message: format!("--peers: expected ID=HOST:PORT, got {part:?}"),
        })?;
        let id: u64 = id.trim().parse().map_err(|_| ServerError::Config {
            message: format!("--peers: bad server id {id:?} in {part:?}"),
        })?;
        if addr.trim().is_empty() || !addr.contains(':') {
            return Err(ServerError::Config {
                message: format!("--peers: bad address {addr:?} for server {id}"),
            });
        }
        if peers.insert(id, addr.trim().to_string()).is_some() {
            return Err(ServerError::Config {
                message: format!("--peers: server {id} listed twice"),
            });
        }
    }
    Ok(peers)
}

/// Parses `--peer-dial`: `peer_host:port=dial_host:port,...`.
pub fn parse_peer_dial(s: &str) -> Result<BTreeMap<String, String>, ServerError> {
    let mut dial = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (peer, via) = part.split_once('=').ok_or_else(|| ServerError::Config {
            message: format!("--peer-dial: expected PEER=DIAL, got {part:?}"),
        })?;
        let (peer, via) = (peer.trim(), via.trim());
        if !peer.contains(':') || !via.contains(':') {
            return Err(ServerError::Config {
                message: format!("--peer-dial: {part:?} needs HOST:PORT on both sides"),
            });
        }
        if dial.insert(peer.to_string(), via.to_string()).is_some() {
            return Err(ServerError::Config {
                message: format!("--peer-dial: {peer} listed twice"),
            });
        }
    }
    Ok(dial)
}

/// The keys a `--config` TOML file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    id: Option<u64>,
    peers: Option<String>,
    peer_addr: Option<String>,
    observer: Option<bool>,
    peer_dial: Option<String>,
    data_dir: Option<PathBuf>,
    client_addr: Option<String>,
    admin_addr: Option<String>,
    sync: Option<SyncPolicy>,
    max_data_bytes: Option<usize>,
    tick_ms: Option<u64>,
    snapshot_every: Option<u64>,
    log_segment_bytes: Option<u64>,
    log_preallocate_bytes: Option<u64>,
    reap_interval_ms: Option<u64>,
    heartbeat_ms: Option<u64>,
    election_timeout_min_ms: Option<u64>,
    election_timeout_max_ms: Option<u64>,
    max_frame_bytes: Option<usize>,
    four_letter_words: Option<String>,
    super_digest: Option<String>,
    tls: Option<crate::tls::settings::TlsFile>,
    max_client_cnxns: Option<u32>,
    max_outstanding_requests: Option<usize>,
    max_watches_per_session: Option<usize>,
    max_outbound_messages: Option<usize>,
    max_outbound_bytes: Option<usize>,
}

impl Args {
    /// Defaults, then the file, then the flags.
    pub fn into_config(self) -> Result<Config, ServerError> {
        let mut c = Config::default();
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            let f: FileConfig = toml::from_str(&text).map_err(|e| ServerError::Config {
                message: format!("{}: {e}", path.display()),
            })?;
            set(&mut c.node_id, f.id);
            if let Some(p) = &f.peers {
                c.peers = parse_peers(p)?;
            }
            if f.peer_addr.is_some() {
                c.peer_addr = f.peer_addr;
            }
            set(&mut c.observer, f.observer);
            if let Some(d) = &f.peer_dial {
                c.peer_dial = parse_peer_dial(d)?;
            }
            set(&mut c.data_dir, f.data_dir);
            set(&mut c.client_addr, f.client_addr);
            set(&mut c.admin_addr, f.admin_addr);
            set(&mut c.sync, f.sync);
            set(&mut c.max_data_bytes, f.max_data_bytes);
            set(&mut c.tick_ms, f.tick_ms);
            set(&mut c.snapshot_every, f.snapshot_every);
            set(&mut c.log_segment_bytes, f.log_segment_bytes);
            set(&mut c.log_preallocate_bytes, f.log_preallocate_bytes);
            set(&mut c.reap_interval_ms, f.reap_interval_ms);
            set(&mut c.heartbeat_ms, f.heartbeat_ms);
            set(&mut c.election_timeout_ms.0, f.election_timeout_min_ms);
            set(&mut c.election_timeout_ms.1, f.election_timeout_max_ms);
            set(&mut c.max_frame_bytes, f.max_frame_bytes);
            set(
                &mut c.four_letter_words,
                f.four_letter_words.as_deref().map(split_words),
            );
            if f.super_digest.is_some() {
                c.super_digest = f.super_digest;
            }
            if let Some(t) = f.tls {
                c.tls.apply_file(t)?;
            }
            LimitArgs {
                max_client_cnxns: f.max_client_cnxns,
                max_outstanding_requests: f.max_outstanding_requests,
                max_watches_per_session: f.max_watches_per_session,
                max_outbound_messages: f.max_outbound_messages,
                max_outbound_bytes: f.max_outbound_bytes,
            }
            .apply(&mut c.limits);
        }
        set(&mut c.node_id, self.id);
        if let Some(p) = &self.peers {
            c.peers = parse_peers(p)?;
        }
        if self.peer_addr.is_some() {
            c.peer_addr = self.peer_addr;
        }
        if self.observer {
            c.observer = true;
        }
        if let Some(d) = &self.peer_dial {
            c.peer_dial = parse_peer_dial(d)?;
        }
        set(&mut c.data_dir, self.data_dir);
        set(&mut c.client_addr, self.client_addr);
        set(&mut c.admin_addr, self.admin_addr);
        set(&mut c.sync, self.sync);
        set(&mut c.max_data_bytes, self.max_data_bytes);
        set(&mut c.tick_ms, self.tick_ms);
        set(&mut c.snapshot_every, self.snapshot_every);
        set(&mut c.max_frame_bytes, self.max_frame_bytes);
        set(
            &mut c.four_letter_words,
            self.four_letter_words.as_deref().map(split_words),
        );
        if self.super_digest.is_some() {
            c.super_digest = self.super_digest;
        }
        c.tls.apply_args(self.tls)?;
        self.limits.apply(&mut c.limits);
        c.validate()?;
        Ok(c)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

impl Config {
    /// Rejects values the server cannot run with.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: &str| {
            Err(ServerError::Config {
                message: m.to_string(),
            })
        };
        if self.tick_ms == 0 {
            return bad("tick_ms must be > 0");
        }
        if self.max_data_bytes == 0 {
            return bad("max_data_bytes must be > 0");
        }
        if let Some(d) = &self.super_digest {
            if !d
                .split_once(':')
                .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty())
            {
                return bad("super_digest must be user:base64(sha1(user:password))");
            }
        }
        if self.max_frame_bytes < 1024 {
            return bad("max_frame_bytes must be at least 1024");
        }
        if self.max_frame_bytes >= 0x1600_0000 {
            // The client port tells a TLS ClientHello (first byte 0x16) from a
            // ZooKeeper frame length by that byte.
            return bad("max_frame_bytes must be below 369098752 (0x16000000)");
        }
        if self.snapshot_every == 0 {
            return bad("snapshot_every must be > 0");
        }
        if let Err(m) = self.limits.check() {
            return bad(m);
        }
        if self.node_id == 0 {
            return bad("server id must be > 0");
        }
        if self.observer && self.peers.is_empty() {
            return bad("--observer needs --peers (the voters to join)");
        }
        if self.observer && self.peers.contains_key(&self.node_id) {
            return bad("an observer's id must not be one of the voters in --peers");
        }
        if !self.observer && !self.peers.is_empty() && !self.peers.contains_key(&self.node_id) {
            return Err(ServerError::Config {
                message: format!(
                    "--id {} is not among --peers; a voter must be listed (or use --observer)",
                    self.node_id
                ),
            });
        }
        if self.log_segment_bytes < 4096 {
            return bad("log_segment_bytes must be at least 4096");
        }
        if self.heartbeat_ms == 0 || self.election_timeout_ms.0 <= self.heartbeat_ms {
            return bad("election timeout must exceed the heartbeat interval");
        }
        if self.election_timeout_ms.1 <= self.election_timeout_ms.0 {
            return bad("election_timeout_max_ms must exceed election_timeout_min_ms");
        }
        self.tls.validate()?;
        crate::tls::peer_auth::PeerSecret::new(self.tls.peer_secret.as_deref())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("zk.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\ntick_ms = 500\nsync = \"never\"\n",
        )
        .expect("write");
        let args = Args {
            config: Some(file),
            tick_ms: Some(100),
            ..Args::default()
        };
        let c = args.into_config().expect("config");
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.tick_ms, 100);
        assert_eq!(c.sync, SyncPolicy::Never);
        assert_eq!(c.client_addr, "127.0.0.1:2181");
        assert_eq!(c.min_session_timeout_ms(), 200);
        assert_eq!(c.max_session_timeout_ms(), 2000);
    }

    #[test]
    fn limits_come_from_file_and_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("zk.toml");
        std::fs::write(
            &file,
            "max_client_cnxns = 5\nmax_watches_per_session = 7\nmax_outbound_bytes = 4096\n",
        )
        .expect("write");
        let args = Args {
            config: Some(file),
            limits: LimitArgs {
                max_client_cnxns: Some(0),
                max_outstanding_requests: Some(3),
                ..LimitArgs::default()
            },
            ..Args::default()
        };
        let l = args.into_config().expect("config").limits;
        assert_eq!(l.max_client_cnxns, 0, "the flag wins");
        assert_eq!(l.max_outstanding_requests, 3);
        assert_eq!(l.max_watches_per_session, 7);
        assert_eq!(l.max_outbound_bytes, 4096);
        assert_eq!(
            l.max_outbound_messages,
            crate::limits::DEFAULT_MAX_OUTBOUND_MESSAGES
        );
        assert_eq!(
            Config::default().limits.max_client_cnxns,
            60,
            "ZooKeeper's default"
        );
        let bad = Args {
            limits: LimitArgs {
                max_outstanding_requests: Some(0),
                ..LimitArgs::default()
            },
            ..Args::default()
        };
        assert!(bad.into_config().is_err());
    }

    #[test]
    fn peers_are_parsed_and_checked() {
        let p = parse_peers("1=127.0.0.1:2888, 2=127.0.0.1:2889,3=h:1").expect("peers");
        assert_eq!(p.len(), 3);
        assert_eq!(p[&2], "127.0.0.1:2889");
        for bad in ["1", "x=h:1", "1=h:1,1=h:2", "1=nohost"] {
            assert!(parse_peers(bad).is_err(), "{bad}");
        }
        let c = Args {
            id: Some(2),
            peers: Some("1=127.0.0.1:2888,2=127.0.0.1:2889".into()),
            ..Args::default()
        }
        .into_config()
        .expect("config");
        assert!(c.clustered());
        assert_eq!(c.peer_bind_addr(), "127.0.0.1:2889");
        let e = Args {
            id: Some(5),
            peers: Some("1=127.0.0.1:2888".into()),
            ..Args::default()
        }
        .into_config()
        .expect_err("not a member");
        assert!(e.to_string().contains("--id 5"), "{e}");
    }

    #[test]
    fn peer_dial_is_parsed_and_checked() {
        let c = Args {
            id: Some(1),
            peers: Some("1=127.0.0.1:2888,2=127.0.0.1:2889".into()),
            peer_dial: Some("127.0.0.1:2889=127.0.0.1:9999".into()),
            ..Args::default()
        }
        .into_config()
        .expect("config");
        assert_eq!(c.peer_dial["127.0.0.1:2889"], "127.0.0.1:9999");
        for bad in ["x", "a=b:1", "h:1=h:2,h:1=h:3"] {
            assert!(parse_peer_dial(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("zk.toml");
        std::fs::write(&file, "no_such_key = 1\n").expect("write");
        let e = Args {
            config: Some(file),
            ..Args::default()
        }
        .into_config()
        .expect_err("unknown key");
        assert!(e.to_string().contains("no_such_key"), "{e}");
        let e = Args {
            tick_ms: Some(0),
            ..Args::default()
        }
        .into_config()
        .expect_err("tick 0");
        assert!(e.to_string().contains("tick_ms"), "{e}");
    }
}
