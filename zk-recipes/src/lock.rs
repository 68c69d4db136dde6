//! A fair, distributed mutex (Curator's `InterProcessMutex`, etcd's `Mutex`).
//!
//! Each contender creates a sequential-ephemeral node under the lock's path; the lowest
//! holds the lock; every other contender watches only its predecessor, so a release
//! wakes exactly one waiter (no herd) and the lock is granted in request order (FIFO).
//! The holder's [`FencingToken`] is the zxid that created its node: successive holders
//! have strictly increasing tokens.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use zk_recipes::Lock;
//! let lock = Lock::new(&client, "/locks/orders")?;
//! let guard = lock.acquire().await?;
//! // ... pass guard.fencing_token() along with every write to the protected resource ...
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # Connection and session
//! - `ConnectionLoss` while joining: the node is found again by its GUID (protected
//!   mode), never duplicated. Reads and deletes are retried.
//! - `Disconnected`: waiters keep waiting; a holder's [`LockGuard::lost`] resolves once
//!   the session might have expired (client-side lease minus a safety margin).
//! - `Expired`: waiters fail with [`Error::Expired`](crate::Error::Expired); holders lose.
//!
//! # Cancellation
//! Dropping an `acquire` future, or a timed-out `acquire_timeout`, removes the node it
//! created (even if the create's reply never arrived): nobody waits behind a ghost.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use zk_client::{Client, Op, OpResult};

use crate::error::Result;
use crate::fencing::FencingToken;
use crate::internal::contend::{exclusive, Queue};
use crate::internal::held::{default_margin, Held};
use crate::internal::parents::check_path;

/// Options of a [`Lock`].
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    /// Lock-delay (Chubby): after a holder vanished without releasing (session expired,
    /// grant lost), the next holder is granted only after this delay. For resources that
    /// cannot check fencing tokens. All contenders of a lock must use the same value.
    pub lock_delay: Option<Duration>,
    /// How long before the client-side session lease ends [`LockGuard::lost`] fires.
    /// Default: a tenth of the session timeout.
    pub lease_margin: Option<Duration>,
    /// Data stored in the contender's node (e.g. who is waiting, for operators).
    pub data: Bytes,
}

/// A fair mutex at a path. Cheap to clone; each `acquire` is an independent contender
/// (so one client can queue several times: it is not reentrant).
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    dir: String,
    options: LockOptions,
}

impl Lock {
    /// The lock at `path` (created on demand as a container).
    ///
    /// Errors: `InvalidArgument` for a relative path, the root, or a trailing `/`.
    pub fn new(client: &Client, path: &str) -> Result<Lock> {
        Lock::with_options(client, path, LockOptions::default())
    }

    /// The lock at `path` with `options`.
    pub fn with_options(client: &Client, path: &str, options: LockOptions) -> Result<Lock> {
        check_path(path)?;
        Ok(Lock {
            client: client.clone(),
            dir: path.to_string(),
            options,
        })
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.dir
    }

    fn queue(&self) -> Queue<'_> {
        Queue {
            client: &self.client,
            dir: &self.dir,
            prefix: "lock-",
            data: self.options.data.clone(),
            lock_delay: self.options.lock_delay,
            rule: exclusive,
        }
    }

    fn guard(&self, node: crate::internal::sequence::Node) -> LockGuard {
        let margin = self
            .options
            .lease_margin
            .unwrap_or_else(|| default_margin(&self.client));
        let marker = self.options.lock_delay.map(|_| self.dir.clone());
        LockGuard {
            held: Held::start(&self.client, node, margin, marker),
        }
    }

    /// Waits for the lock.
    ///
    /// Errors: `Expired` (the session ended while waiting); `Lost` (our node was deleted
    /// by someone else); client errors other than `ConnectionLoss`.
    pub async fn acquire(&self) -> Result<LockGuard> {
        let node = self.queue().acquire(None, "acquiring a lock").await?;
        Ok(self.guard(node))
    }

    /// Waits for the lock at most `limit`; on timeout the node is removed before this
    /// returns `Err(Timeout)`.
    pub async fn acquire_timeout(&self, limit: Duration) -> Result<LockGuard> {
        let node = self
            .queue()
            .acquire(Some(limit), "acquiring a lock")
            .await?;
        Ok(self.guard(node))
    }

    /// Takes the lock only if it is free now (`None` otherwise, leaving nothing behind).
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        Ok(self
            .queue()
            .try_acquire()
            .await?
            .map(|node| self.guard(node)))
    }
}

/// A held lock. Release it with [`LockGuard::release`]; dropping it releases in the
/// background (best effort; the node goes with the session anyway).
#[derive(Debug)]
pub struct LockGuard {
    held: Held,
}

impl LockGuard {
    /// The fencing token: strictly larger than any previous holder's.
    pub fn fencing_token(&self) -> FencingToken {
        self.held.token()
    }

    /// The holder's node.
    pub fn path(&self) -> &str {
        self.held.path()
    }

    /// The holder's sequence number (its place in the request order).
    pub fn sequence(&self) -> i64 {
        self.held.sequence()
    }

    /// True once the lock can no longer be trusted (see [`LockGuard::lost`]).
    pub fn is_lost(&self) -> bool {
        self.held.is_lost()
    }

    /// Resolves as soon as the lock can no longer be trusted: the session ended, the
    /// client has been disconnected so long that the session might have expired
    /// (client-side lease minus the margin: before any other contender can be granted),
    /// or the node was deleted. After that the node is removed if the session survived.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.held.lost()
    }

    /// Runs `ops` atomically only if this guard still holds the lock (a `multi` that
    /// first checks the holder's node); returns the results of `ops`.
    ///
    /// Errors: `Fenced` when the lock is no longer held; `Client(Multi { .. })` when one
    /// of `ops` failed (indices are those of `ops`).
    pub async fn guarded(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.held.guarded(ops).await
    }

    /// Releases the lock and waits for the server (retried across reconnects).
    pub async fn release(self) -> Result<()> {
        self.held.release().await
    }
}
