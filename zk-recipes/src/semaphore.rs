//! A distributed counting semaphore: at most N leases held at once (Curator's
//! `InterProcessSemaphoreV2`).
//!
//! Layout: `{path}/lock` is a fair [`Lock`] that serializes acquirers; `{path}/leases`
//! holds one sequential-ephemeral node per lease. An acquirer takes the lock, creates
//! its lease node, and, while more than N leases exist, waits on the leases' child watch
//! (only the one lock holder waits there, so no herd); then it releases the lock. Leases
//! are therefore granted in request order. Same connection, session and cancellation
//! rules as [`Lock`]; every lease carries a fencing token.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! let pool = zk_recipes::Semaphore::new(&client, "/semaphores/db-connections", 3)?;
//! let lease = pool.acquire().await?;
//! lease.release().await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use zk_client::{Client, EventType, Op, OpResult, SessionState};

use crate::error::{Error, Result};
use crate::fencing::FencingToken;
use crate::internal::held::{default_margin, Held};
use crate::internal::parents::{check_path, join};
use crate::internal::retry::retry;
use crate::internal::sequence::{sequence_of, Node, Pending};
use crate::lock::{Lock, LockGuard};

/// A semaphore with a fixed number of leases at a path.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    leases_dir: String,
    lock: Lock,
    max: usize,
    lease_margin: Option<Duration>,
}

impl Semaphore {
    /// The semaphore at `path` with `max` leases. All users of one path must agree on
    /// `max`.
    ///
    /// Errors: `InvalidArgument` for a bad path or `max == 0`.
    pub fn new(client: &Client, path: &str, max: usize) -> Result<Semaphore> {
        check_path(path)?;
        if max == 0 {
            return Err(Error::InvalidArgument(
                "a semaphore needs at least one lease".to_string(),
            ));
        }
        Ok(Semaphore {
            client: client.clone(),
            leases_dir: join(path, "leases"),
            lock: Lock::new(client, &join(path, "lock"))?,
            max,
            lease_margin: None,
        })
    }

    /// How long before the session lease ends `lost()` fires (default: a tenth of the
    /// session timeout).
    pub fn lease_margin(mut self, margin: Duration) -> Semaphore {
        self.lease_margin = Some(margin);
        self
    }

    /// The number of leases.
    pub fn max_leases(&self) -> usize {
        self.max
    }

    /// Waits for a lease.
    pub async fn acquire(&self) -> Result<Lease> {
        self.acquire_within(None).await
    }

    /// Waits at most `limit` for a lease; on timeout nothing of ours is left behind (the
    /// lease node at once, the internal lock node in the background).
    pub async fn acquire_timeout(&self, limit: Duration) -> Result<Lease> {
        self.acquire_within(Some(limit)).await
    }

    /// A lease only if one is free now.
    pub async fn try_acquire(&self) -> Result<Option<Lease>> {
        let Some(guard) = self.lock.try_acquire().await? else {
            return Ok(None);
        };
        let mut pending = Pending::new(&self.client, &self.leases_dir);
        let attempt = async {
            let node = pending.create("lease-", Bytes::new()).await?;
            let (count, _) = self.count().await?;
            Ok::<_, Error>((count <= self.max).then_some(node))
        }
        .await;
        let _ = guard.release().await;
        match attempt {
            Ok(Some(node)) => {
                pending.disarm();
                Ok(Some(self.lease(node)))
            }
            other => {
                let _ = pending.abandon().await;
                other.map(|_| None)
            }
        }
    }

    async fn acquire_within(&self, limit: Option<Duration>) -> Result<Lease> {
        let mut pending = Pending::new(&self.client, &self.leases_dir);
        let result = match limit {
            None => self.join_and_wait(&mut pending).await,
            Some(after) => {
                match tokio::time::timeout(after, self.join_and_wait(&mut pending)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Timeout {
                        during: "acquiring a semaphore lease",
                        after,
                    }),
                }
            }
        };
        match result {
            Ok(node) => {
                pending.disarm();
                Ok(self.lease(node))
            }
            Err(e) => {
                let _ = pending.abandon().await;
                Err(e)
            }
        }
    }

    async fn join_and_wait(&self, pending: &mut Pending) -> Result<Node> {
        let guard: LockGuard = self.lock.acquire().await?;
        let granted = async {
            let node = pending.create("lease-", Bytes::new()).await?;
            loop {
                let (count, watcher) = self.count_and_watch().await?;
                if count <= self.max {
                    return Ok(node);
                }
                let event = watcher.await;
                if event.event_type == EventType::Session
                    && matches!(event.state, SessionState::Expired | SessionState::Closed)
                {
                    return Err(Error::Expired {
                        during: "waiting for a semaphore lease",
                    });
                }
            }
        }
        .await;
        if let Err(e) = guard.release().await {
            tracing::debug!(error = %e, "could not release the semaphore's lock");
        }
        granted
    }

    /// The number of lease nodes.
    async fn count(&self) -> Result<(usize, ())> {
        let (children, _) = retry(&self.client, "counting leases", || {
            self.client.get_children(&self.leases_dir)
        })
        .await?;
        Ok((leases(&children), ()))
    }

    async fn count_and_watch(&self) -> Result<(usize, zk_client::OneshotWatcher)> {
        let (children, _, watcher) = retry(&self.client, "counting leases", || {
            self.client.get_children_and_watch(&self.leases_dir)
        })
        .await?;
        Ok((leases(&children), watcher))
    }

    fn lease(&self, node: Node) -> Lease {
        let margin = self
            .lease_margin
            .unwrap_or_else(|| default_margin(&self.client));
        Lease(Held::start(&self.client, node, margin, None))
    }
}

fn leases(children: &[String]) -> usize {
    children.iter().filter(|c| sequence_of(c).is_some()).count()
}

/// A held lease; release it, or drop it to release in the background.
#[derive(Debug)]
pub struct Lease(Held);

impl Lease {
    /// The fencing token of this lease (the creating zxid of its node).
    pub fn fencing_token(&self) -> FencingToken {
        self.0.token()
    }

    /// The lease's node.
    pub fn path(&self) -> &str {
        self.0.path()
    }

    /// True once the lease can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        self.0.is_lost()
    }

    /// Resolves once the lease can no longer be trusted (session ended, lease ran out
    /// while disconnected, node deleted).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.lost()
    }

    /// Runs `ops` atomically only while this lease is still held.
    pub async fn guarded(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.0.guarded(ops).await
    }

    /// Returns the lease and waits for the server.
    pub async fn release(self) -> Result<()> {
        self.0.release().await
    }
}
