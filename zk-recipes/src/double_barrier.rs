//! Double barrier: [`DoubleBarrier::enter`] returns once `count` participants have
//! entered, [`DoubleBarrier::leave`] once all of them have left. For computations that
//! must start together and finish together.
//!
//! The algorithm is the one of ZooKeeper's recipes page (as in Curator's
//! `DistributedDoubleBarrier`): each participant is an ephemeral child of the barrier
//! node; the one that sees `count` children creates a `ready` child, whose creation
//! releases everyone waiting in `enter`. Leaving, the lowest participant waits for the
//! highest to go, every other deletes itself and waits for the lowest, so nobody is
//! woken by every departure.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use zk_recipes::DoubleBarrier;
//! let barrier = DoubleBarrier::new(client, "/barriers/job-42", 3);
//! barrier.enter().await?;   // returns when three participants are in
//! // ... work ...
//! barrier.leave().await?;   // returns when all three are out
//! # Ok(()) }
//! ```
//!
//! # Connection loss, disconnection, expiry
//! - Creates and deletes are retried across `ConnectionLoss` (the member node has a fixed
//!   name, so a retried create that finds its own node is a success).
//! - While disconnected, `enter` and `leave` keep waiting (watches are re-armed).
//! - If the session expires, the member node is gone: `enter`/`leave` fail with
//!   [`Error::Expired`]; the others may then wait forever in `leave` for a member that
//!   cannot come back, or pass `enter` without it, as in ZooKeeper — use the timeouts.
//!
//! The barrier node is a container (it vanishes once empty); `ready` is removed by the
//! last to leave. Reuse a path only after every participant has left.

use std::time::Duration;

use zk_client::{Client, CreateOptions, Error as ZkError, EventType, OneshotWatcher, SessionState};

use crate::error::{Error, Result};
use crate::internal::b_paths::{ensure_path, join, random_id};
use crate::internal::b_retry::retrying;

/// The name of the child whose creation releases `enter`.
const READY: &str = "ready";

/// One participant of a double barrier.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    count: usize,
    id: String,
}

impl DoubleBarrier {
    /// A participant of the barrier at `path` that waits for `count` participants, with a
    /// random member id.
    pub fn new(client: Client, path: impl Into<String>, count: usize) -> Self {
        DoubleBarrier {
            client,
            path: path.into(),
            count,
            id: random_id(),
        }
    }

    /// Uses `id` as this participant's member name (unique among the participants; not
    /// `ready`; no `/`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// This participant's member name.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn member_path(&self) -> String {
        join(&self.path, &self.id)
    }

    /// Joins, then waits until `count` participants have joined.
    ///
    /// Errors: [`Error::InvalidArgument`] for a bad id or `count` of 0, or an id held by
    /// another session; [`Error::Expired`] / [`Error::Closed`].
    pub async fn enter(&self) -> Result<()> {
        if self.count == 0 || self.id == READY || self.id.contains('/') || self.id.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "double barrier member {:?} of {}",
                self.id, self.count
            )));
        }
        self.join().await?;
        let ready = join(&self.path, READY);
        loop {
            let (stat, watcher) =
                retrying(&self.client, || self.client.exists_and_watch(&ready)).await?;
            if stat.is_some() {
                return Ok(());
            }
            let members = self.members().await?;
            if members.len() >= self.count {
                match retrying(&self.client, || {
                    self.client
                        .create(&ready, Vec::<u8>::new(), &CreateOptions::persistent())
                })
                .await
                {
                    Ok(_) | Err(Error::Client(ZkError::NodeExists { .. })) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            settle(watcher).await?;
        }
    }

    /// [`DoubleBarrier::enter`] bounded by `timeout`; on timeout this participant's node
    /// is removed again (so it is not counted) and [`Error::Timeout`] returned.
    pub async fn enter_timeout(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.enter()).await {
            Ok(r) => r,
            Err(_) => {
                let member = self.member_path();
                let _ = retrying(&self.client, || self.client.delete(&member, None)).await;
                Err(Error::Timeout {
                    during: "double barrier",
                    after: timeout,
                })
            }
        }
    }

    /// Leaves, then waits until every participant has left.
    ///
    /// Errors: [`Error::Expired`] / [`Error::Closed`].
    pub async fn leave(&self) -> Result<()> {
        let member = self.member_path();
        loop {
            let mut members = self.members().await?;
            if members.is_empty() {
                break;
            }
            members.sort();
            let ours = members.iter().position(|m| *m == self.id);
            let watched = match ours {
                Some(0) if members.len() == 1 => {
                    self.delete(&member).await?;
                    break;
                }
                // Lowest: wait for the highest to go (it goes last but one).
                Some(0) => join(&self.path, &members[members.len() - 1]),
                // Anyone else: go, then wait for the lowest.
                Some(_) | None => {
                    if ours.is_some() {
                        self.delete(&member).await?;
                    }
                    join(&self.path, &members[0])
                }
            };
            let (stat, watcher) =
                retrying(&self.client, || self.client.exists_and_watch(&watched)).await?;
            if stat.is_some() {
                settle(watcher).await?;
            }
        }
        let ready = join(&self.path, READY);
        match retrying(&self.client, || self.client.delete(&ready, None)).await {
            Ok(()) | Err(Error::Client(ZkError::NoNode { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// [`DoubleBarrier::leave`] bounded by `timeout` ([`Error::Timeout`]).
    pub async fn leave_timeout(&self, timeout: Duration) -> Result<()> {
        tokio::time::timeout(timeout, self.leave())
            .await
            .map_err(|_| Error::Timeout {
                during: "double barrier",
                after: timeout,
            })?
    }

    /// Creates this participant's ephemeral node (and the container above it).
    async fn join(&self) -> Result<()> {
        let member = self.member_path();
        for _ in 0..5 {
            ensure_path(&self.client, &self.path, CreateOptions::container()).await?;
            let created = retrying(&self.client, || {
                self.client
                    .create(&member, Vec::<u8>::new(), &CreateOptions::ephemeral())
            })
            .await;
            match created {
                Ok(_) => return Ok(()),
                Err(Error::Client(ZkError::NodeExists { .. })) => {
                    // Ours (a retried create that had been applied) or someone else's?
                    let stat = retrying(&self.client, || self.client.exists(&member)).await?;
                    match stat {
                        Some(s) if s.ephemeral_owner == self.client.session_id() => return Ok(()),
                        Some(_) => {
                            return Err(Error::InvalidArgument(format!(
                                "member {member} belongs to another session"
                            )))
                        }
                        None => continue,
                    }
                }
                // The container was reaped between the two creates: make it again.
                Err(Error::Client(ZkError::NoNode { .. })) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::InvalidArgument(format!(
            "cannot join the double barrier at {}",
            self.path
        )))
    }

    /// The member names (without `ready`); none if the barrier node is gone.
    async fn members(&self) -> Result<Vec<String>> {
        match retrying(&self.client, || self.client.get_children(&self.path)).await {
            Ok((children, _)) => Ok(children.into_iter().filter(|c| c != READY).collect()),
            Err(Error::Client(ZkError::NoNode { .. })) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match retrying(&self.client, || self.client.delete(path, None)).await {
            Ok(()) | Err(Error::Client(ZkError::NoNode { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Waits for a one-shot watch; the session ending is an error, anything else means "look
/// again".
async fn settle(watcher: OneshotWatcher) -> Result<()> {
    let event = watcher.await;
    match (event.event_type, event.state) {
        (EventType::Session, SessionState::Expired) => Err(Error::Expired {
            during: "double barrier",
        }),
        (EventType::Session, SessionState::Closed) => Err(Error::Closed),
        _ => Ok(()),
    }
}
