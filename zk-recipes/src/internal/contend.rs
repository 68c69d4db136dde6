//! Waiting in a queue of sequence nodes until granted. Each waiter watches exactly one
//! node (the one whose deletion may change its answer), so a release wakes one waiter,
//! not the herd.

use std::time::Duration;

use bytes::Bytes;
use zk_client::Client;

use crate::error::{Error, Result};
use crate::internal::lock_delay;
use crate::internal::parents::join;
use crate::internal::sequence::{delete_own, guid_of, members, Member, Node, Pending};
use crate::internal::wait::wait_for_delete;

/// What a queue's rule says for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Granted now.
    Granted,
    /// Not yet: wait for this member's deletion, then ask again.
    WaitFor(String),
}

/// Mutex rule: the first is granted; the others wait for their predecessor.
pub(crate) fn exclusive(members: &[Member], me: usize) -> Turn {
    match me.checked_sub(1).and_then(|p| members.get(p)) {
        None => Turn::Granted,
        Some(pred) => Turn::WaitFor(pred.name.clone()),
    }
}

/// Waits until `rule` grants `me` in `dir`. On `Disconnected` it keeps waiting (the
/// watch is re-armed on reconnect).
///
/// Errors: [`Error::Expired`] when the session ends; [`Error::Lost`] when our node
/// disappears with the session alive.
pub(crate) async fn wait_turn(
    client: &Client,
    dir: &str,
    me: &Node,
    rule: impl Fn(&[Member], usize) -> Turn,
) -> Result<()> {
    let mine = guid_of(&me.name);
    loop {
        let mut members = members(client, dir).await?;
        // Another node of this very attempt (same GUID) is an orphan of a create whose
        // reply was lost yet which was applied after all: remove it, or we would wait
        // behind it (or leave it to block the next holders).
        if mine.is_some() {
            let orphans: Vec<String> = members
                .iter()
                .filter(|m| m.name != me.name && guid_of(&m.name) == mine)
                .map(|m| m.name.clone())
                .collect();
            for name in &orphans {
                tracing::warn!(orphan = name, "removing a duplicate of our own node");
                delete_own(client, &join(dir, name)).await?;
            }
            members.retain(|m| !orphans.contains(&m.name));
        }
        let Some(index) = members.iter().position(|m| m.name == me.name) else {
            if client.current_state().is_terminal() {
                return Err(Error::Expired {
                    during: "waiting for a turn",
                });
            }
            return Err(Error::Lost {
                path: me.path.clone(),
            });
        };
        match rule(&members, index) {
            Turn::Granted => return Ok(()),
            Turn::WaitFor(name) => wait_for_delete(client, &join(dir, &name)).await?,
        }
    }
}

/// Whether `rule` grants `me` right now (one listing, no waiting).
pub(crate) async fn granted_now(
    client: &Client,
    dir: &str,
    me: &Node,
    rule: impl Fn(&[Member], usize) -> Turn,
) -> Result<bool> {
    let members = members(client, dir).await?;
    Ok(members
        .iter()
        .position(|m| m.name == me.name)
        .is_some_and(|i| rule(&members, i) == Turn::Granted))
}

/// One queue to join: where, under which name prefix, with which data, and whether a
/// grant honours lock-delay.
pub(crate) struct Queue<'a> {
    pub client: &'a Client,
    pub dir: &'a str,
    pub prefix: &'a str,
    pub data: Bytes,
    pub lock_delay: Option<Duration>,
    pub rule: fn(&[Member], usize) -> Turn,
}

impl Queue<'_> {
    /// Joins the queue and waits for the grant. `limit` bounds the wait
    /// ([`Error::Timeout`]). Whatever ends the wait other than a grant (error, timeout,
    /// the future being dropped) removes our node: at once here, or in the background
    /// when dropped.
    pub async fn acquire(&self, limit: Option<Duration>, during: &'static str) -> Result<Node> {
        let mut pending = Pending::new(self.client, self.dir);
        let result = match limit {
            None => self.join_and_wait(&mut pending).await,
            Some(after) => {
                match tokio::time::timeout(after, self.join_and_wait(&mut pending)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Timeout { during, after }),
                }
            }
        };
        match result {
            Ok(node) => {
                pending.disarm();
                Ok(node)
            }
            Err(e) => {
                if let Err(cleanup) = pending.abandon().await {
                    tracing::warn!(error = %cleanup, "could not remove an abandoned queue node");
                }
                Err(e)
            }
        }
    }

    async fn join_and_wait(&self, pending: &mut Pending) -> Result<Node> {
        let node = pending.create(self.prefix, self.data.clone()).await?;
        wait_turn(self.client, self.dir, &node, self.rule).await?;
        if let Some(delay) = self.lock_delay {
            lock_delay::before_grant(self.client, self.dir, &node, delay).await?;
        }
        Ok(node)
    }

    /// Joins the queue and keeps the node only if granted at once (and no lock-delay is
    /// due); otherwise removes it and returns `None`.
    pub async fn try_acquire(&self) -> Result<Option<Node>> {
        let mut pending = Pending::new(self.client, self.dir);
        let attempt = async {
            let node = pending.create(self.prefix, self.data.clone()).await?;
            if !granted_now(self.client, self.dir, &node, self.rule).await? {
                return Ok(None);
            }
            if self.lock_delay.is_some() {
                if lock_delay::needs_delay(self.client, self.dir, &node).await? {
                    return Ok(None);
                }
                lock_delay::record(self.client, self.dir, &node).await?;
            }
            Ok(Some(node))
        }
        .await;
        match attempt {
            Ok(Some(node)) => {
                pending.disarm();
                Ok(Some(node))
            }
            other => {
                if let Err(cleanup) = pending.abandon().await {
                    tracing::warn!(error = %cleanup, "could not remove an abandoned queue node");
                }
                other
            }
        }
    }
}
