//! Shared counter: an `i64` in one node, changed only by compare-and-set on the node's
//! version, so concurrent [`SharedCounter::add`]s from any number of clients all count.
//!
//! Like Curator's `DistributedAtomicLong` in its optimistic mode. The value is stored as
//! decimal text (readable with `zkcli get`); a missing node counts as 0.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use zk_recipes::SharedCounter;
//! let hits = SharedCounter::new(client, "/counters/hits");
//! let now = hits.add(1).await?;
//! assert!(now >= 1);
//! assert!(hits.compare_and_set(now, 100).await? || hits.get().await? != now);
//! # Ok(()) }
//! ```
//!
//! # Connection loss, disconnection, expiry
//! - Reads are retried across `ConnectionLoss`; writes wait for the reconnect.
//! - A write whose reply was lost is resolved by reading the node again: unchanged
//!   version → not applied, retried; version + 1 with our value → applied. If the node
//!   moved on further, the outcome is unknowable and [`Error::Indeterminate`] is
//!   returned instead of counting twice or not at all.
//! - Nothing here is tied to the session: expiry only makes calls fail with
//!   [`Error::Expired`].

use zk_client::{Client, CreateOptions, Error as ZkError, Stat};

use crate::error::{Error, Result};
use crate::internal::b_paths::{ensure_path, parent};
use crate::internal::b_retry::{pause_then_reconnected, retrying};

/// A shared `i64` counter at one path.
#[derive(Debug, Clone)]
pub struct SharedCounter {
    client: Client,
    path: String,
}

/// What one compare-and-set attempt found.
enum Attempt {
    Done,
    Conflict,
}

impl SharedCounter {
    /// The counter at `path` (created on the first write; its parents too).
    pub fn new(client: Client, path: impl Into<String>) -> Self {
        SharedCounter {
            client,
            path: path.into(),
        }
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value (0 if the node does not exist).
    ///
    /// Errors: [`Error::Decode`] if the node does not hold a decimal `i64`.
    pub async fn get(&self) -> Result<i64> {
        Ok(self.read().await?.0)
    }

    /// Adds `delta` (which may be negative; wrapping on overflow) and returns the new
    /// value. Retries until its compare-and-set wins.
    pub async fn add(&self, delta: i64) -> Result<i64> {
        loop {
            let (value, stat) = self.read().await?;
            let next = value.wrapping_add(delta);
            if let Attempt::Done = self.attempt(stat, next).await? {
                return Ok(next);
            }
        }
    }

    /// Sets the value to `new` if it is `expected` now; returns whether it did.
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<bool> {
        loop {
            let (value, stat) = self.read().await?;
            if value != expected {
                return Ok(false);
            }
            if let Attempt::Done = self.attempt(stat, new).await? {
                return Ok(true);
            }
        }
    }

    /// The value and stat; `None` stat for a missing node.
    async fn read(&self) -> Result<(i64, Option<Stat>)> {
        match retrying(&self.client, || self.client.get_data(&self.path)).await {
            Ok((data, stat)) => Ok((self.decode(&data)?, Some(stat))),
            Err(Error::Client(ZkError::NoNode { .. })) => Ok((0, None)),
            Err(e) => Err(e),
        }
    }

    fn decode(&self, data: &[u8]) -> Result<i64> {
        if data.is_empty() {
            return Ok(0);
        }
        std::str::from_utf8(data)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Decode {
                path: self.path.clone(),
                message: "not a decimal i64".to_string(),
            })
    }

    /// One compare-and-set of `next` against what `read` saw.
    async fn attempt(&self, seen: Option<Stat>, next: i64) -> Result<Attempt> {
        let data = next.to_string().into_bytes();
        let Some(stat) = seen else {
            // No node yet: creating it is the compare-and-set (it fails if someone else
            // created it first). A lost reply is settled by the retry finding the node.
            ensure_path(
                &self.client,
                parent(&self.path),
                CreateOptions::persistent(),
            )
            .await?;
            return match self
                .client
                .create(&self.path, data, &CreateOptions::persistent())
                .await
            {
                Ok(_) => Ok(Attempt::Done),
                Err(ZkError::NodeExists { .. }) => Ok(Attempt::Conflict),
                Err(e) if e.is_retryable() => self.settle(-1, &next.to_string()).await,
                Err(e) => Err(e.into()),
            };
        };
        match self
            .client
            .set_data(&self.path, data, Some(stat.version))
            .await
        {
            Ok(_) => Ok(Attempt::Done),
            Err(ZkError::BadVersion { .. }) | Err(ZkError::NoNode { .. }) => Ok(Attempt::Conflict),
            Err(e) if e.is_retryable() => self.settle(stat.version, &next.to_string()).await,
            Err(e) => Err(e.into()),
        }
    }

    /// After a lost reply to a write from `version` (-1: a create) of `value`: was it
    /// applied?
    async fn settle(&self, version: i32, value: &str) -> Result<Attempt> {
        pause_then_reconnected(&self.client).await?;
        retrying(&self.client, || self.client.sync(&self.path)).await?;
        match retrying(&self.client, || self.client.get_data(&self.path)).await {
            Ok((data, stat)) if stat.version == version + 1 => {
                if &data[..] == value.as_bytes() {
                    Ok(Attempt::Done)
                } else {
                    Ok(Attempt::Conflict)
                }
            }
            Ok((_, stat)) if stat.version == version => Ok(Attempt::Conflict),
            Err(Error::Client(ZkError::NoNode { .. })) if version == -1 => Ok(Attempt::Conflict),
            Ok(_) | Err(Error::Client(ZkError::NoNode { .. })) => Err(Error::Indeterminate {
                op: "add",
                path: self.path.clone(),
            }),
            Err(e) => Err(e),
        }
    }
}
