//! FIFO queue: producers [`Queue::offer`] byte items, consumers [`Queue::take`] them in
//! insertion order; every item goes to exactly one consumer.
//!
//! Items are persistent-sequential children of the queue node (`item-{marker}-{seq}`),
//! ordered by the sequence number the server assigns. A consumer lists the children,
//! and tries them lowest first: it reads an item and deletes it; whoever's delete
//! succeeds owns the item, the others move on to the next (ZooKeeper's recipe, as in
//! Curator's `DistributedQueue`). `take` waits on a child watch when the queue is empty.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use zk_recipes::Queue;
//! let queue = Queue::new(client, "/queues/jobs");
//! queue.offer("job-1").await?;
//! let item = queue.take().await?;       // waits until an item exists
//! assert_eq!(&item[..], b"job-1");
//! assert!(queue.try_take().await?.is_none());
//! # Ok(()) }
//! ```
//!
//! # Connection loss, disconnection, expiry
//! - `offer` is exactly-once: one `multi` creates the item and an ephemeral receipt
//!   (`receipt-{marker}-{seq}`, the marker random per offer) that the producer deletes
//!   once it has the reply. After a `ConnectionLoss` the producer `sync`s and looks for
//!   its receipt: present, the item was enqueued (even if a consumer has taken it
//!   since); absent, it was not, and the producer creates it again.
//! - A consumer claims an item with one `multi` that deletes it and creates an
//!   ephemeral claim marker (`taken-{seq}`); after a `ConnectionLoss` the consumer
//!   `sync`s and the marker says whether the claim went through, so an item is never
//!   lost and never taken twice.
//!
//! The checks after a `ConnectionLoss` `sync` first: the client may have reconnected to
//! a server that has not yet applied the write whose reply was lost.
//! - While disconnected, `take` keeps waiting; the child watch is re-armed on reconnect.
//! - If the session expires, calls fail with [`Error::Expired`]; items stay queued for
//!   other consumers (only an item whose claim had been applied is taken).
//!
//! The queue node is persistent (created on demand with its parents).

use std::time::Duration;

use bytes::Bytes;
use zk_client::{
    Client, Code, CreateOptions, Error as ZkError, EventType, Op, OpResult, SessionState,
};

use crate::error::{Error, Result};
use crate::internal::b_paths::{ensure_path, join, random_id, sequence_of};
use crate::internal::b_retry::{pause_then_reconnected, retrying};

/// Prefix of item names.
const ITEM: &str = "item-";
/// Prefix of claim markers.
const TAKEN: &str = "taken-";
/// Prefix of a producer's receipt for one offer.
const RECEIPT: &str = "receipt-";

/// A distributed FIFO queue of byte items at one path.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    path: String,
}

impl Queue {
    /// The queue at `path` (created on the first `offer`).
    pub fn new(client: Client, path: impl Into<String>) -> Self {
        Queue {
            client,
            path: path.into(),
        }
    }

    /// The queue node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends an item; returns the node it was stored as.
    ///
    /// Errors: [`Error::Expired`] / [`Error::Closed`]; client errors (`Other` for an
    /// item larger than the server's packet limit).
    pub async fn offer(&self, item: impl Into<Bytes>) -> Result<String> {
        let item = item.into();
        let marker = random_id();
        let prefix = join(&self.path, &format!("{ITEM}{marker}-"));
        let receipt = join(&self.path, &format!("{RECEIPT}{marker}-"));
        loop {
            let ops = vec![
                Op::create(
                    prefix.clone(),
                    item.clone(),
                    CreateOptions::persistent().sequential(true),
                ),
                Op::create(
                    receipt.clone(),
                    Vec::<u8>::new(),
                    CreateOptions::ephemeral().sequential(true),
                ),
            ];
            match self.client.multi(ops).await {
                Ok(results) => {
                    let mut created = results.into_iter().filter_map(|r| match r {
                        OpResult::Created { path, .. } => Some(path),
                        _ => None,
                    });
                    let (Some(path), Some(receipt)) = (created.next(), created.next()) else {
                        return Err(Error::InvalidArgument(format!(
                            "offer to {}: the server did not report the created nodes",
                            self.path
                        )));
                    };
                    // The receipt has done its job; drop it without waiting.
                    tokio::spawn(self.client.delete(&receipt, None));
                    return Ok(path);
                }
                Err(ZkError::Multi {
                    code: Code::NoNode, ..
                })
                | Err(ZkError::NoNode { .. }) => {
                    ensure_path(&self.client, &self.path, CreateOptions::persistent()).await?;
                }
                Err(e) if e.is_retryable() => {
                    pause_then_reconnected(&self.client).await?;
                    if let Some(path) = self.find_receipt(&marker).await? {
                        return Ok(path);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// After an offer's reply was lost: whether its receipt exists (the offer was
    /// applied). Returns the item's path, which is the receipt's sequence number minus
    /// one (both were created by one `multi`, the item first, in the same parent).
    async fn find_receipt(&self, marker: &str) -> Result<Option<String>> {
        retrying(&self.client, || self.client.sync(&self.path)).await?;
        let needle = format!("{RECEIPT}{marker}-");
        let Some(found) = self
            .children()
            .await?
            .into_iter()
            .find(|c| c.starts_with(&needle))
        else {
            return Ok(None);
        };
        tokio::spawn(self.client.delete(&join(&self.path, &found), None));
        let seq = sequence_of(&found).unwrap_or(1).saturating_sub(1);
        let item = format!("{ITEM}{marker}-{seq:010}");
        Ok(Some(join(&self.path, &item)))
    }

    /// Takes the head item, waiting until there is one.
    ///
    /// Cancellation: dropping the future while a claim is in flight may leave that claim
    /// applied (the item is then removed and lost to everyone); between claims it is safe.
    ///
    /// Errors: [`Error::Expired`] / [`Error::Closed`].
    pub async fn take(&self) -> Result<Bytes> {
        loop {
            let watcher = match self.client.get_children_and_watch(&self.path).await {
                Ok((children, _, watcher)) => {
                    if let Some(item) = self.claim_first(children).await? {
                        return Ok(item);
                    }
                    watcher
                }
                Err(ZkError::NoNode { .. }) => {
                    ensure_path(&self.client, &self.path, CreateOptions::persistent()).await?;
                    continue;
                }
                Err(e) if e.is_retryable() => {
                    pause_then_reconnected(&self.client).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let event = watcher.await;
            match (event.event_type, event.state) {
                (EventType::Session, SessionState::Expired) => {
                    return Err(Error::Expired { during: "queue" })
                }
                (EventType::Session, SessionState::Closed) => return Err(Error::Closed),
                _ => {}
            }
        }
    }

    /// [`Queue::take`] bounded by `timeout` ([`Error::Timeout`]).
    pub async fn take_timeout(&self, timeout: Duration) -> Result<Bytes> {
        tokio::time::timeout(timeout, self.take())
            .await
            .map_err(|_| Error::Timeout {
                during: "queue",
                after: timeout,
            })?
    }

    /// Takes the head item if there is one, without waiting.
    pub async fn try_take(&self) -> Result<Option<Bytes>> {
        let children = self.children().await?;
        self.claim_first(children).await
    }

    /// The head item, left in the queue (another consumer may take it at any moment).
    pub async fn peek(&self) -> Result<Option<Bytes>> {
        for name in sorted_items(self.children().await?) {
            let path = join(&self.path, &name);
            match retrying(&self.client, || self.client.get_data(&path)).await {
                Ok((data, _)) => return Ok(Some(data)),
                Err(Error::Client(ZkError::NoNode { .. })) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// The number of items queued now.
    pub async fn len(&self) -> Result<usize> {
        Ok(sorted_items(self.children().await?).len())
    }

    /// True when no item is queued now.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// The queue node's children; none if it does not exist yet.
    async fn children(&self) -> Result<Vec<String>> {
        match retrying(&self.client, || self.client.get_children(&self.path)).await {
            Ok((children, _)) => Ok(children),
            Err(Error::Client(ZkError::NoNode { .. })) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Tries the items of `children` lowest first; returns the first one this consumer
    /// claimed, or `None` if others got them all.
    async fn claim_first(&self, children: Vec<String>) -> Result<Option<Bytes>> {
        for name in sorted_items(children) {
            if let Some(data) = self.claim(&name).await? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// Reads the item `name` and claims it: one multi deletes it and creates this
    /// session's claim marker. `None` if another consumer had it first.
    async fn claim(&self, name: &str) -> Result<Option<Bytes>> {
        let path = join(&self.path, name);
        let data = match retrying(&self.client, || self.client.get_data(&path)).await {
            Ok((data, _)) => data,
            Err(Error::Client(ZkError::NoNode { .. })) => return Ok(None),
            Err(e) => return Err(e),
        };
        let seq = sequence_of(name).unwrap_or_default();
        let marker = join(&self.path, &format!("{TAKEN}{seq:010}"));
        loop {
            let ops = vec![
                Op::delete(path.clone(), None),
                Op::create(marker.clone(), Vec::<u8>::new(), CreateOptions::ephemeral()),
            ];
            match self.client.multi(ops).await {
                Ok(_) => {
                    // The marker has done its job; drop it without waiting.
                    tokio::spawn(self.client.delete(&marker, None));
                    return Ok(Some(data));
                }
                Err(ZkError::Multi { .. }) => return Ok(None),
                Err(e) if e.is_retryable() => {
                    pause_then_reconnected(&self.client).await?;
                    // Did the claim go through before the connection broke? (Synced
                    // first: the server now serving us may not have applied it yet.)
                    retrying(&self.client, || self.client.sync(&self.path)).await?;
                    let stat = retrying(&self.client, || self.client.exists(&marker)).await?;
                    if stat.is_some_and(|s| s.ephemeral_owner == self.client.session_id()) {
                        tokio::spawn(self.client.delete(&marker, None));
                        return Ok(Some(data));
                    }
                    let still_there = retrying(&self.client, || self.client.exists(&path)).await?;
                    if still_there.is_none() {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The item names among `children`, in queue (sequence) order.
fn sorted_items(children: Vec<String>) -> Vec<String> {
    let mut items: Vec<(u64, String)> = children
        .into_iter()
        .filter(|c| c.starts_with(ITEM))
        .filter_map(|c| sequence_of(&c).map(|s| (s, c)))
        .collect();
    items.sort();
    items.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_sort_by_sequence_not_marker() {
        let children = vec![
            "item-ffff-0000000003".to_string(),
            "taken-0000000001".to_string(),
            "item-0000-0000000010".to_string(),
            "item-aaaa-0000000002".to_string(),
        ];
        assert_eq!(
            sorted_items(children),
            vec![
                "item-aaaa-0000000002",
                "item-ffff-0000000003",
                "item-0000-0000000010"
            ]
        );
    }
}
