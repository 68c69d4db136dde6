//! Barrier: a node that holds waiters back while it exists ([`Barrier::set`]) and
//! releases them all when it is removed ([`Barrier::remove`]).
//!
//! Like Curator's `DistributedBarrier` and the "Barriers" entry of ZooKeeper's recipes
//! page: waiters leave an exists watch on the barrier node and return when it is gone.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use zk_recipes::Barrier;
//! let barrier = Barrier::new(client.clone(), "/barriers/deploy");
//! barrier.set().await?;                  // hold everyone back
//! let waiter = Barrier::new(client, "/barriers/deploy");
//! let released = tokio::spawn(async move { waiter.wait().await });
//! barrier.remove().await?;               // ... and let them go
//! released.await.expect("task")?;
//! # Ok(()) }
//! ```
//!
//! # Connection loss, disconnection, expiry
//! - `set` and `remove` are idempotent and retried across `ConnectionLoss`.
//! - While disconnected, waiters keep waiting: their watch is re-armed on reconnect, and
//!   a removal they missed fires then.
//! - If the session expires (or the client is closed), waiters fail with
//!   [`Error::Expired`] ([`Error::Closed`]): they can no longer learn of the removal.
//!   The barrier node itself is persistent and unaffected.

use std::time::Duration;

use zk_client::{Client, CreateOptions, Error as ZkError, EventType, SessionState};

use crate::error::{Error, Result};
use crate::internal::b_paths::ensure_path;
use crate::internal::b_retry::{pause_then_reconnected, retrying};

/// A barrier at one path: present means closed, absent means open.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier at `path` (nothing is created until [`Barrier::set`]).
    pub fn new(client: Client, path: impl Into<String>) -> Self {
        Barrier {
            client,
            path: path.into(),
        }
    }

    /// The barrier node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Closes the barrier: creates its node (and missing parents). Already set is fine.
    pub async fn set(&self) -> Result<()> {
        ensure_path(&self.client, &self.path, CreateOptions::persistent()).await
    }

    /// Opens the barrier: deletes its node, releasing every waiter. Not set is fine.
    ///
    /// Errors: `NotEmpty` if someone created children under the barrier node.
    pub async fn remove(&self) -> Result<()> {
        match retrying(&self.client, || self.client.delete(&self.path, None)).await {
            Ok(()) | Err(Error::Client(ZkError::NoNode { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// True if the barrier is currently set.
    pub async fn is_set(&self) -> Result<bool> {
        Ok(retrying(&self.client, || self.client.exists(&self.path))
            .await?
            .is_some())
    }

    /// Waits until the barrier is not set (returns at once if it is not set now).
    ///
    /// Cancellation-safe: dropping the future leaves nothing behind but a one-shot watch
    /// that the server discards when it fires.
    ///
    /// Errors: [`Error::Expired`] / [`Error::Closed`] when the session ends first.
    pub async fn wait(&self) -> Result<()> {
        loop {
            let watcher = match self.client.exists_and_watch(&self.path).await {
                Ok((None, _)) => return Ok(()),
                Ok((Some(_), watcher)) => watcher,
                Err(e) if e.is_retryable() => {
                    pause_then_reconnected(&self.client).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let event = watcher.await;
            match (event.event_type, event.state) {
                (EventType::NodeDeleted, _) => return Ok(()),
                (EventType::Session, SessionState::Expired) => {
                    return Err(Error::Expired { during: "barrier" })
                }
                (EventType::Session, SessionState::Closed) => return Err(Error::Closed),
                // Data changed, or the watch was removed: look again.
                _ => {}
            }
        }
    }

    /// [`Barrier::wait`] bounded by `timeout`. Errors: [`Error::Timeout`] when it runs out.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        tokio::time::timeout(timeout, self.wait())
            .await
            .map_err(|_| Error::Timeout {
                during: "barrier",
                after: timeout,
            })?
    }
}
