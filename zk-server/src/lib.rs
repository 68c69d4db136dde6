//! `zk-server`: a ZooKeeper-class coordination server on openraft.
//!
//! Crate map (see `shared/DESIGN.md`; where this code departs from it, and why:
//! `docs/design-decisions.md`):
//! - [`run`] / [`start`]: start one node exactly as the `zk-server` binary does;
//!   [`node`] assembles it and runs the leader's duties (expiry, reaping, serving gate,
//!   failover watchdog); [`state`]: what apply and sessions share.
//! - [`config`]: flags, TOML file, defaults; [`ensemble`]: local multi-node configs;
//!   [`limits`]: per-client limits (connections per IP, outstanding requests, watches,
//!   unsent replies).
//! - [`tree`]: the replicated znode tree, ACLs and sessions table (pure, deterministic).
//! - [`raft`]: openraft glue: type config, log store, state machine, peer network (each
//!   peer call names its sender; another ensemble's calls are refused: `raft::caller`;
//!   openraft's runtime with a seedable election RNG: `raft::runtime`).
//! - [`storage`]: durable bytes: the write-ahead log, vote/meta file, snapshot files.
//! - [`pipeline`]: prep -> submit (raft) / read (local) -> reply.
//! - [`session`]: the per-connection task, its ordered outbound queue, liveness.
//! - [`watch`]: watch registrations and triggering.
//! - [`api`], [`admin`]: the client listener (protocol sniffing), the gRPC services
//!   (clients, peers), four-letter words, admin HTTP and metrics.
//! - [`tls`]: TLS on the client and peer ports (rustls), client certificates (`x509`
//!   ACL ids), peer authentication (mutual TLS or a shared secret).
//! - [`zkwire`]: Apache ZooKeeper's jute client protocol on the same pipeline.
//! - [`testing`]: [`testing::TestServer`] and [`testing::TestCluster`], real nodes for
//!   integration tests (ours and applications'); [`testing::free_port`] reserves ports
//!   outside the kernel's ephemeral range.
//! - [`sim`]: the seam to turmoil's deterministic simulation (feature `simulation`):
//!   simulated network for the client and peer ports, simulated disk, simulated clock,
//!   seeded random draws and injectable bugs (the checker's negative controls).
//! - [`fuzzing`]: the decoders' entry points for the fuzz targets in `fuzz/` and the
//!   corpus replay test.

pub mod admin;
pub mod api;
pub mod config;
pub mod ensemble;
pub mod error;
pub mod fuzzing;
pub mod limits;
pub mod pipeline;
pub mod raft;
pub mod session;
pub mod sim;
pub mod state;
pub mod storage;
pub mod timeline;
pub mod tls;
pub mod tree;
pub mod watch;
pub mod zkwire;

pub use config::Config;
pub use error::ServerError;

pub mod node;
pub mod testing;

pub use node::{start, ServerHandle};

/// Runs a node until `shutdown` resolves: exactly what the `zk-server` binary runs.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    let handle = start(config).await?;
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}
