//! Coordination recipes built only on the public `zk-client` API, one recipe per module.
//!
//! Every lock, lease and leadership carries a [`FencingToken`] (the zxid that created the
//! holder's node: strictly increasing across successive holders, cluster-wide). Writes to
//! the tree are fenced with `guarded(ops)` (a `multi` that first checks the holder's node),
//! resources outside the tree with a [`FencingValidator`].
//!
//! Map of the crate:
//! - [`lock`]: fair mutex; [`rwlock`]: read-write lock; [`semaphore`]: N leases.
//! - [`election`]: leader election with lease-based `lost()`, a latch and a selector.
//! - [`fencing`]: tokens and the validator for outside resources.
//! - [`registry`], [`config_watch`], [`barrier`], [`double_barrier`], [`queue`],
//!   [`counter`]: service discovery, typed config, barriers, FIFO queue, counter.
//! - [`error`]: the one error enum.
//! - `internal/`: protected-mode sequential nodes, waiting for deletes, parents, retries.
//!
//! # Sessions, connections and the recipes
//! - `ConnectionLoss`: idempotent steps (reads, deletes of our own nodes, finding our own
//!   node after a create) are retried once the client is connected again; a sequential
//!   create is made findable with a per-attempt GUID in its name (Curator's "protected"
//!   mode), so it never leaves an orphan node.
//! - `Disconnected`: waiters keep waiting (their watches are re-armed on reconnect);
//!   holders learn through `lost()` once the session might have expired (client-side lease).
//! - `Expired`: holders lose; waiters fail with [`Error::Expired`].
//!
//! # Credentials and ACLs
//! Recipes take the client they are given, credentials included: build it with
//! `ClientBuilder::auth` (ZooKeeper's `addauth`, re-sent after every reconnect), or a
//! client certificate over TLS, and `ClientBuilder::default_acl` for the ACL of every
//! node the recipes create (Curator's `ACLProvider`). With
//! `default_acl(Acl::creator_all())` the recipe's nodes (parents, lock and election
//! nodes, queue items) can be read, changed and deleted only by sessions holding the
//! same credentials:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use zk_client::{Acl, Client};
//! let client = Client::builder()
//!     .servers("127.0.0.1:2181")
//!     .auth("digest", "app:secret")
//!     .default_acl(Acl::creator_all())
//!     .connect()
//!     .await?;
//! let lock = zk_recipes::Lock::new(&client, "/app/locks/orders")?;
//! let _guard = lock.acquire().await?;
//! # Ok(()) }
//! ```

pub mod barrier;
pub mod config_watch;
pub mod counter;
pub mod double_barrier;
pub mod election;
pub mod error;
pub mod fencing;
pub(crate) mod internal;
pub mod lock;
pub mod queue;
pub mod registry;
pub mod rwlock;
pub mod semaphore;

pub use barrier::Barrier;
pub use config_watch::{ConfigWatch, ConfigWriter, Versioned};
pub use counter::SharedCounter;
pub use double_barrier::DoubleBarrier;
pub use election::{
    Election, ElectionOptions, LeaderInfo, LeaderLatch, LeaderSelector, Leadership,
};
pub use error::{Error, Result};
pub use fencing::{FencingToken, FencingValidator};
pub use internal::b_client_source::ClientSource;
pub use lock::{Lock, LockGuard, LockOptions};
pub use queue::Queue;
pub use registry::{Pick, Registry, ServiceCache, ServiceChange, ServiceInstance};
pub use rwlock::{ReadGuard, RwLock, WriteGuard};
pub use semaphore::{Lease, Semaphore};
