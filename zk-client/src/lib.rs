//! Async (tokio) client for the zk-server coordination service.
//!
//! One [`Client`] holds one session. A single background task owns the gRPC stream:
//! calls are queued in call order, pipelined, and answered in order; the task pings,
//! reconnects to the next server with backoff, reattaches the session and re-arms every
//! watch so nothing is missed. Watches are values, not callbacks: the `*_and_watch`
//! calls return a [`OneshotWatcher`] future, [`Client::watch`] a [`PersistentWatcher`]
//! stream, [`Client::state`] a [`StateStream`].
//!
//! ```no_run
//! use zk_client::{Client, CreateOptions, EventType};
//!
//! # async fn example() -> zk_client::Result<()> {
//! let client = Client::connect("127.0.0.1:2181/app").await?;
//! let (path, _stat) = client.create("/config", "v1", &CreateOptions::persistent()).await?;
//! let (data, stat, watcher) = client.get_data_and_watch(&path).await?;
//! assert_eq!(&data[..], b"v1");
//! client.set_data(&path, "v2", Some(stat.version)).await?;
//! let event = watcher.await;
//! assert_eq!(event.event_type, EventType::NodeDataChanged);
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! Map of the crate:
//! - [`client`]: the operations; [`builder`]: configuration and connect.
//! - [`error`]: the one error enum; [`types`]: Stat, create modes, states, events.
//! - [`multi`]: atomic `multi` and batched `multi_read`.
//! - `session/`: the task that owns the stream (connect, reattach, heartbeats, pending
//!   requests, host rotation); `watch/`: watchers and the registry that routes events.
//! - `convert`: wire messages <-> these types; `chroot`: path prefixing.

pub mod builder;
mod chroot;
pub mod client;
pub mod cluster;
mod convert;
pub mod error;
pub mod multi;
pub mod random;
mod session;
pub mod tls;
pub mod types;
mod watch;

pub use builder::ClientBuilder;
pub use client::Client;
pub use cluster::{ClusterStatus, MemberStatus};
pub use error::{Error, Result};
pub use multi::{Op, OpResult, ReadOp, ReadResult};
pub use tls::TlsOptions;
pub use types::{
    digest_id, Acl, CreateMode, CreateOptions, EventType, Perms, SessionState, Stat, WatchedEvent,
    WatcherType,
};
pub use watch::{OneshotWatcher, PersistentWatcher, StateStream};
pub use zk_proto::path::InvalidPath;
pub use zk_proto::Code;
