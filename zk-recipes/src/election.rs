//! Leader election with lease fencing (Curator's `LeaderLatch`/`LeaderSelector`, etcd's
//! `Election`), where a deposed leader's writes are rejected.
//!
//! Candidates create sequential-ephemeral nodes (data: the candidate's id) under the
//! election's path; the lowest is the leader; every other candidate watches only its
//! predecessor. [`Election::campaign`] returns a [`Leadership`] once elected:
//! - [`Leadership::fencing_token`]: the zxid that created the leader's node, strictly
//!   increasing across successive leaders;
//! - [`Leadership::lost`]: resolves as soon as leadership can no longer be trusted: the
//!   session ended, the node was deleted, or the client has been disconnected so long
//!   that the session might have expired. The last uses the client-side lease, which
//!   ends (minus a safety margin) before the servers can expire the session, so `lost()`
//!   fires before any other candidate can be elected;
//! - [`Leadership::guarded`]: a `multi` that first checks the leader's node, so a deposed
//!   leader's writes fail with [`Error::Fenced`] instead of landing;
//! - [`Leadership::resign`].
//!
//! [`Election::observe`] streams the current leader; [`LeaderLatch`] keeps a candidate
//! in the race and answers `has_leadership()`; [`LeaderSelector`] runs a task whenever
//! elected and then goes to the back of the line, so candidates take turns.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use zk_client::{CreateOptions, Op};
//! let election = zk_recipes::Election::new(&client, "/election/billing", "node-1")?;
//! let leadership = election.campaign().await?;
//! let token = leadership.fencing_token();
//! leadership
//!     .guarded(vec![Op::set_data("/billing/state", format!("run by {token}"), None)])
//!     .await?;
//! leadership.resign().await?;
//! # Ok(()) }
//! ```
//!
//! # Connection and session
//! - `ConnectionLoss` while joining: the node is found again (protected mode).
//! - `Disconnected`: candidates keep waiting; the leader learns through `lost()`.
//! - `Expired`: the leader loses; `campaign` fails with [`Error::Expired`]; a latch or
//!   selector stops (a new client is needed).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{Client, EventType, Op, OpResult};

use crate::error::{Error, Result};
use crate::fencing::FencingToken;
use crate::internal::contend::{exclusive, Queue};
use crate::internal::held::{default_margin, Held};
use crate::internal::parents::{check_path, join};
use crate::internal::retry::retry;
use crate::internal::sequence::{members, Node};
use crate::internal::wait::wait_for_delete;

/// Options of an [`Election`].
#[derive(Debug, Clone, Default)]
pub struct ElectionOptions {
    /// Lock-delay: after a leader vanished without resigning (session expired,
    /// leadership lost), the next leader is elected only after this delay. All
    /// candidates must use the same value.
    pub lock_delay: Option<Duration>,
    /// How long before the client-side session lease ends `lost()` fires. Default: a
    /// tenth of the session timeout.
    pub lease_margin: Option<Duration>,
}

/// One candidate's view of an election at a path.
#[derive(Debug, Clone)]
pub struct Election {
    client: Client,
    dir: String,
    id: String,
    options: ElectionOptions,
}

/// Who leads: the leader's id, fencing token and node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaderInfo {
    /// The id the leader campaigned with.
    pub id: String,
    /// The leader's fencing token.
    pub token: FencingToken,
    /// The leader's node.
    pub path: String,
}

impl Election {
    /// The election at `path` (created on demand as a container), for a candidate named
    /// `id` (what [`Election::observe`] reports).
    pub fn new(client: &Client, path: &str, id: impl Into<String>) -> Result<Election> {
        Election::with_options(client, path, id, ElectionOptions::default())
    }

    /// Like [`Election::new`], with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        id: impl Into<String>,
        options: ElectionOptions,
    ) -> Result<Election> {
        check_path(path)?;
        Ok(Election {
            client: client.clone(),
            dir: path.to_string(),
            id: id.into(),
            options,
        })
    }

    /// This candidate's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn queue(&self) -> Queue<'_> {
        Queue {
            client: &self.client,
            dir: &self.dir,
            prefix: "n_",
            data: Bytes::from(self.id.clone()),
            lock_delay: self.options.lock_delay,
            rule: exclusive,
        }
    }

    fn leadership(&self, node: Node) -> Leadership {
        let margin = self
            .options
            .lease_margin
            .unwrap_or_else(|| default_margin(&self.client));
        let marker = self.options.lock_delay.map(|_| self.dir.clone());
        Leadership {
            held: Held::start(&self.client, node, margin, marker),
            id: self.id.clone(),
        }
    }

    /// Joins the election and waits until elected. Cancel-safe: dropping the future
    /// withdraws the candidacy (the node is removed).
    ///
    /// Errors: `Expired` when the session ends first; `Lost` when our node was deleted
    /// by someone else.
    pub async fn campaign(&self) -> Result<Leadership> {
        let node = self.queue().acquire(None, "campaigning").await?;
        Ok(self.leadership(node))
    }

    /// Like [`Election::campaign`], bounded; on timeout the candidacy is withdrawn.
    pub async fn campaign_timeout(&self, limit: Duration) -> Result<Leadership> {
        let node = self.queue().acquire(Some(limit), "campaigning").await?;
        Ok(self.leadership(node))
    }

    /// The current leader, if any.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        loop {
            let Some(first) = members(&self.client, &self.dir).await?.into_iter().next() else {
                return Ok(None);
            };
            let path = join(&self.dir, &first.name);
            let read = retry(&self.client, "reading the leader", || {
                let get = self.client.get_data(&path);
                async move {
                    match get.await {
                        Ok(found) => Ok(Some(found)),
                        Err(zk_client::Error::NoNode { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
            if let Some((data, stat)) = read {
                return Ok(Some(LeaderInfo {
                    id: String::from_utf8_lossy(&data).into_owned(),
                    token: FencingToken::from_stat(&stat),
                    path,
                }));
            }
            // The leader left between the listing and the read: look again.
        }
    }

    /// A stream of the current leader: the leader now (`None`: nobody), then each
    /// change. It watches the leader's node (or the election's children while there is
    /// none); it ends after yielding an error (`Expired` when the session ends).
    pub fn observe(&self) -> impl Stream<Item = Result<Option<LeaderInfo>>> + Send + 'static {
        let state = (self.clone(), None::<Option<LeaderInfo>>, false);
        futures::stream::unfold(state, |(election, last, done)| async move {
            if done {
                return None;
            }
            match election.next_leader(last.as_ref()).await {
                Ok(leader) => Some((Ok(leader.clone()), (election, Some(leader), false))),
                Err(e) => Some((Err(e), (election, last, true))),
            }
        })
    }

    /// Waits until the leader differs from `last` (`None`: nothing seen yet).
    async fn next_leader(&self, last: Option<&Option<LeaderInfo>>) -> Result<Option<LeaderInfo>> {
        loop {
            let leader = self.leader().await?;
            if last != Some(&leader) {
                return Ok(leader);
            }
            match &leader {
                Some(info) => wait_for_delete(&self.client, &info.path).await?,
                None => self.wait_for_candidate().await?,
            }
        }
    }

    /// Waits until the election may have a candidate (a child watch, or an exists watch
    /// while the directory is missing).
    async fn wait_for_candidate(&self) -> Result<()> {
        let watched = retry(&self.client, "watching the election", || {
            let list = self.client.get_children_and_watch(&self.dir);
            async move {
                match list.await {
                    Ok((children, _, watcher)) => Ok(Some((children, watcher))),
                    Err(zk_client::Error::NoNode { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
        let watcher = match watched {
            Some((children, _)) if !children.is_empty() => return Ok(()),
            Some((_, watcher)) => watcher,
            None => {
                let (stat, watcher) = retry(&self.client, "watching the election", || {
                    self.client.exists_and_watch(&self.dir)
                })
                .await?;
                if stat.is_some() {
                    return Ok(());
                }
                watcher
            }
        };
        let event = watcher.await;
        if event.event_type == EventType::Session && event.state.is_terminal() {
            return Err(Error::Expired {
                during: "observing an election",
            });
        }
        Ok(())
    }
}

/// Being the leader. Resign with [`Leadership::resign`]; dropping it resigns in the
/// background.
#[derive(Debug)]
pub struct Leadership {
    held: Held,
    id: String,
}

impl Leadership {
    /// The fencing token: strictly larger than any previous leader's.
    pub fn fencing_token(&self) -> FencingToken {
        self.held.token()
    }

    /// The id this leader campaigned with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The leader's node.
    pub fn path(&self) -> &str {
        self.held.path()
    }

    /// True once leadership can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        self.held.is_lost()
    }

    /// Resolves as soon as leadership can no longer be trusted (see the module docs),
    /// before another candidate can be elected. After that the node is removed if the
    /// session survived, so the next candidate takes over.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.held.lost()
    }

    /// Runs `ops` atomically only while this is still the leader.
    ///
    /// Errors: [`Error::Fenced`] for a deposed leader (nothing applied);
    /// `Client(Multi { .. })` when one of `ops` failed (indices are those of `ops`).
    pub async fn guarded(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.held.guarded(ops).await
    }

    /// Steps down and waits for the server.
    pub async fn resign(self) -> Result<()> {
        self.held.release().await
    }
}

/// A candidate that stays in the race in the background (Curator's `LeaderLatch`):
/// after losing leadership with the session alive, it joins again. It stops when the
/// session ends or on [`LeaderLatch::close`].
#[derive(Debug)]
pub struct LeaderLatch {
    state: watch::Receiver<Option<FencingToken>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl LeaderLatch {
    /// Starts campaigning with `election`.
    pub fn start(election: Election) -> LeaderLatch {
        let (tx, state) = watch::channel(None);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(latch(election, tx, stopped));
        LeaderLatch {
            state,
            stop: Some(stop),
            task,
        }
    }

    /// True while this candidate is the leader (and its leadership not lost).
    pub fn has_leadership(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// The fencing token of the current leadership, if leading.
    pub fn fencing_token(&self) -> Option<FencingToken> {
        *self.state.borrow()
    }

    /// Waits until this candidate leads. Errors with `Expired` if the latch stopped.
    pub async fn await_leadership(&self) -> Result<FencingToken> {
        let mut state = self.state.clone();
        let leading = state.wait_for(|s| s.is_some()).await;
        match leading.ok().and_then(|s| *s) {
            Some(token) => Ok(token),
            None => Err(Error::Expired {
                during: "waiting for leadership",
            }),
        }
    }

    /// Leaves the race (resigning if leading) and waits for it.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn latch(
    election: Election,
    state: watch::Sender<Option<FencingToken>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let leadership = tokio::select! {
            _ = &mut stop => return,
            won = election.campaign() => match won {
                Ok(leadership) => leadership,
                Err(e) => {
                    tracing::info!(error = %e, "leader latch stops");
                    return;
                }
            },
        };
        state.send_replace(Some(leadership.fencing_token()));
        let lost = leadership.lost();
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = lost => false,
        };
        state.send_replace(None);
        if stopping {
            let _ = leadership.resign().await;
            return;
        }
        drop(leadership);
        if election.client.current_state().is_terminal() {
            return;
        }
    }
}

/// Runs a task each time this candidate is elected, then goes to the back of the line,
/// so candidates take turns (Curator's `LeaderSelector` with auto-requeue). The task
/// gets the [`Leadership`]; the turn ends when the task returns or leadership is lost
/// (the task is then dropped). Stops when the session ends or on
/// [`LeaderSelector::stop`].
#[derive(Debug)]
pub struct LeaderSelector {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    turns: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl LeaderSelector {
    /// Starts taking turns with `election`, running `lead` for each turn.
    pub fn start<F, Fut>(election: Election, lead: F) -> LeaderSelector
    where
        F: FnMut(Leadership) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (turns_tx, turns) = watch::channel(0);
        let task = tokio::spawn(select_loop(election, lead, stopped, turns_tx));
        LeaderSelector {
            stop: Some(stop),
            turns,
            task,
        }
    }

    /// How many turns this candidate has finished.
    pub fn turns(&self) -> u64 {
        *self.turns.borrow()
    }

    /// Leaves the race (ending a running turn) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn select_loop<F, Fut>(
    election: Election,
    mut lead: F,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    turns: watch::Sender<u64>,
) where
    F: FnMut(Leadership) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let leadership = tokio::select! {
            _ = &mut stop => return,
            won = election.campaign() => match won {
                Ok(leadership) => leadership,
                Err(e) => {
                    tracing::info!(error = %e, "leader selector stops");
                    return;
                }
            },
        };
        let lost = leadership.lost();
        // The task owns the leadership: when it returns (or is dropped) the leadership
        // is dropped, which queues its release before our next campaign's create.
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = lost => false,
            _ = lead(leadership) => false,
        };
        turns.send_modify(|t| *t += 1);
        if stopping || election.client.current_state().is_terminal() {
            return;
        }
    }
}
