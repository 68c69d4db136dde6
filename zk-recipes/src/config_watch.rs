//! Typed configuration in one node: [`ConfigWatch`] follows it (current value and a
//! stream of updates), [`ConfigWriter`] publishes it. Values are JSON (serde).
//!
//! The watch holds a persistent watch on the node and reads it again after every event
//! and after every reconnect or new session ("re-read after every re-watch", as
//! Curator's `NodeCache` does), so the value it ends with is the node's latest one even
//! if events were coalesced or missed while disconnected. A value that does not decode
//! is reported as an error item; [`ConfigWatch::current`] keeps the last good one.
//!
//! ```no_run
//! # async fn f(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use futures::StreamExt;
//! use serde::{Deserialize, Serialize};
//! use zk_recipes::{ConfigWatch, ConfigWriter};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Limits { max_conns: u32 }
//!
//! ConfigWriter::new(client.clone(), "/config/limits").publish(&Limits { max_conns: 10 }).await?;
//! let watch = ConfigWatch::<Limits>::new(client, "/config/limits").await?;
//! println!("now: {:?}", watch.current().map(|v| v.value));
//! let mut updates = watch.updates();
//! while let Some(update) = updates.next().await {
//!     match update {
//!         Ok(Some(v)) => println!("v{}: {:?}", v.stat.version, v.value),
//!         Ok(None) => println!("deleted"),
//!         Err(e) => println!("bad value, keeping the last good one: {e}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Connection loss, disconnection, expiry
//! - Reads are retried after `ConnectionLoss`; while disconnected the current value stays
//!   and no item is produced; after the reconnect the node is read again.
//! - Expiry: from a [`ClientSource`] made of a `ClientBuilder`, the watch opens a new
//!   session, watches and reads again (nothing is missed: the read is after the
//!   re-watch). From a plain `Client`, the stream ends with an [`Error::Expired`] item;
//!   `current()` keeps the last good value.
//! - [`ConfigWriter::publish`] is idempotent and retried; a compare-and-set publish whose
//!   reply was lost is settled by reading the node back.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use zk_client::{Client, CreateOptions, Error as ZkError, EventType, SessionState, Stat};

use crate::error::{Error, Result};
use crate::internal::b_client_source::ClientSource;
use crate::internal::b_paths::{ensure_path, parent};
use crate::internal::b_retry::{pause_then_reconnected, retrying};

/// A decoded value and the stat of the node it was read from.
#[derive(Debug)]
pub struct Versioned<T> {
    /// The value.
    pub value: Arc<T>,
    /// The node's stat when read (`stat.version` is what a compare-and-set publish
    /// expects).
    pub stat: Stat,
}

impl<T> Clone for Versioned<T> {
    fn clone(&self) -> Self {
        Versioned {
            value: self.value.clone(),
            stat: self.stat,
        }
    }
}

/// One item of [`ConfigWatch::updates`]: a new value, `None` when the node is gone, or
/// an error (a value that did not decode, or the end of the watch).
pub type Update<T> = Result<Option<Versioned<T>>>;

/// What the background task shares with the handles.
struct Shared<T> {
    /// The last good value (`None`: none yet, or the node was deleted).
    good: Option<Versioned<T>>,
    /// The latest item; `None` until the first read.
    latest: Option<Update<T>>,
    /// No more items will come.
    ended: bool,
}

/// Aborts the background task when the last handle goes.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows the typed value of one node. See the module docs.
pub struct ConfigWatch<T> {
    path: String,
    rx: watch::Receiver<Shared<T>>,
    _task: Arc<TaskGuard>,
}

impl<T> Clone for ConfigWatch<T> {
    fn clone(&self) -> Self {
        ConfigWatch {
            path: self.path.clone(),
            rx: self.rx.clone(),
            _task: self._task.clone(),
        }
    }
}

impl<T> std::fmt::Debug for ConfigWatch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatch")
            .field("path", &self.path)
            .finish()
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> ConfigWatch<T> {
    /// Starts following `path` (which need not exist yet) and returns once the first
    /// read is done (or failed: then the error is the first item of `updates`).
    ///
    /// `source` is a `Client` (follows it until its session ends) or a
    /// `ClientBuilder` (renews the session after expiry); see [`ClientSource`].
    pub async fn new(source: impl Into<ClientSource>, path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        let (tx, mut rx) = watch::channel(Shared {
            good: None,
            latest: None,
            ended: false,
        });
        let task = tokio::spawn(follow(source.into(), path.clone(), tx));
        let _ = rx.wait_for(|s| s.latest.is_some()).await;
        Ok(ConfigWatch {
            path,
            rx,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The last value that decoded (`None` if there was none yet or the node is gone).
    pub fn current(&self) -> Option<Versioned<T>> {
        self.rx.borrow().good.clone()
    }

    /// The latest item first, then every change after it. Changes that happen while
    /// the stream is not polled are coalesced to the latest (a slow reader sees the
    /// final value, perhaps not every intermediate one). Ends after an
    /// [`Error::Expired`] / [`Error::Closed`] item when the watch cannot go on.
    pub fn updates(&self) -> BoxStream<'static, Update<T>> {
        let mut rx = self.rx.clone();
        rx.mark_changed();
        futures::stream::unfold((rx, false), |(mut rx, done)| async move {
            if done || rx.changed().await.is_err() {
                return None;
            }
            let (item, ended) = {
                let s = rx.borrow_and_update();
                (s.latest.clone(), s.ended)
            };
            item.map(|item| (item, (rx, ended)))
        })
        .boxed()
    }

    /// Waits until the current value satisfies `f` (checked now, then on every change).
    ///
    /// Errors: [`Error::Expired`] / [`Error::Closed`] if the watch ends first.
    pub async fn wait_for(&self, mut f: impl FnMut(Option<&Versioned<T>>) -> bool) -> Result<()> {
        let mut rx = self.rx.clone();
        let result = rx.wait_for(|s| s.ended || f(s.good.as_ref())).await;
        match result {
            Ok(s) if !s.ended || f(s.good.as_ref()) => Ok(()),
            Ok(s) => Err(match &s.latest {
                Some(Err(e)) => e.clone(),
                _ => Error::Closed,
            }),
            Err(_) => Err(Error::Closed),
        }
    }
}

/// The background task: (re)connect, watch, read, repeat.
async fn follow<T: DeserializeOwned>(
    source: ClientSource,
    path: String,
    tx: watch::Sender<Shared<T>>,
) {
    let mut last: Option<Option<i64>> = None; // mzxid of the last item (Some(None): gone)
    loop {
        let client = match source.client().await {
            Ok(c) => c,
            Err(e) if e.is_session_gone() => {
                tx.send_modify(|s| {
                    s.latest = Some(Err(e));
                    s.ended = true;
                });
                return;
            }
            Err(e) => {
                tx.send_modify(|s| s.latest = Some(Err(e)));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut events = match retrying(&client, || client.watch(&path, false)).await {
            Ok(w) => w,
            Err(e) if e.is_session_gone() => continue,
            Err(e) => {
                tracing::warn!(%path, error = %e, "config watch cannot watch");
                tx.send_modify(|s| s.latest = Some(Err(e)));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut reread = true;
        loop {
            if reread {
                match read(&client, &path).await {
                    Ok(outcome) => publish(&tx, &path, outcome, &mut last),
                    Err(e) if e.is_session_gone() => break,
                    Err(e) => tx.send_modify(|s| s.latest = Some(Err(e))),
                }
            }
            reread = false;
            // Wait for something, then take whatever else is already there (coalescing).
            let mut event = events.next().await;
            let mut session_over = false;
            loop {
                match event {
                    None => session_over = true,
                    Some(ev) => match (ev.event_type, ev.state) {
                        (EventType::Session, SessionState::Connected) => reread = true,
                        (EventType::Session, SessionState::Disconnected) => {}
                        (EventType::Session, _) | (EventType::PersistentWatchRemoved, _) => {
                            session_over = true
                        }
                        (EventType::NodeChildrenChanged, _) => {}
                        _ => reread = true,
                    },
                }
                match events.next().now_or_never() {
                    Some(next) if !session_over => event = next,
                    _ => break,
                }
            }
            if session_over {
                break;
            }
        }
    }
}

/// The node's data and stat, or `None` when it does not exist. Retries connection losses.
async fn read(client: &Client, path: &str) -> Result<Option<(Bytes, Stat)>> {
    match retrying(client, || client.get_data(path)).await {
        Ok(found) => Ok(Some(found)),
        Err(Error::Client(ZkError::NoNode { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Decodes a read and publishes it, unless it is the item published last.
fn publish<T: DeserializeOwned>(
    tx: &watch::Sender<Shared<T>>,
    path: &str,
    outcome: Option<(Bytes, Stat)>,
    last: &mut Option<Option<i64>>,
) {
    let id = outcome.as_ref().map(|(_, stat)| stat.mzxid);
    if *last == Some(id) {
        return;
    }
    *last = Some(id);
    let item: Update<T> = match outcome {
        None => Ok(None),
        Some((data, stat)) => match serde_json::from_slice::<T>(&data) {
            Ok(value) => Ok(Some(Versioned {
                value: Arc::new(value),
                stat,
            })),
            Err(e) => Err(Error::Decode {
                path: path.to_string(),
                message: e.to_string(),
            }),
        },
    };
    tx.send_modify(|s| {
        match &item {
            Ok(value) => s.good = value.clone(),
            Err(e) => tracing::warn!(%path, error = %e, "config value does not decode"),
        }
        s.latest = Some(item);
    });
}

/// Publishes typed values to a config node (JSON), with optional compare-and-set.
pub struct ConfigWriter<T> {
    client: Client,
    path: String,
    _type: PhantomData<fn(&T)>,
}

impl<T> Clone for ConfigWriter<T> {
    fn clone(&self) -> Self {
        ConfigWriter {
            client: self.client.clone(),
            path: self.path.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for ConfigWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl<T: Serialize> ConfigWriter<T> {
    /// A writer of the node at `path`.
    pub fn new(client: Client, path: impl Into<String>) -> Self {
        ConfigWriter {
            client,
            path: path.into(),
            _type: PhantomData,
        }
    }

    fn encode(&self, value: &T) -> Result<Bytes> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| Error::Encode {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Writes `value`, creating the node (and its parents) if needed. Returns the stat.
    pub async fn publish(&self, value: &T) -> Result<Stat> {
        let data = self.encode(value)?;
        loop {
            match retrying(&self.client, || {
                self.client.set_data(&self.path, data.clone(), None)
            })
            .await
            {
                Ok(stat) => return Ok(stat),
                Err(Error::Client(ZkError::NoNode { .. })) => {}
                Err(e) => return Err(e),
            }
            ensure_path(
                &self.client,
                parent(&self.path),
                CreateOptions::persistent(),
            )
            .await?;
            match retrying(&self.client, || {
                self.client
                    .create(&self.path, data.clone(), &CreateOptions::persistent())
            })
            .await
            {
                Ok((_, stat)) => return Ok(stat),
                // Created meanwhile (perhaps by our own lost first attempt): set it.
                Err(Error::Client(ZkError::NodeExists { .. })) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `value` only if the node is at `expected` version (`None`: only if the node
    /// does not exist yet). Returns the new stat.
    ///
    /// Errors: `BadVersion` / `NodeExists` (as [`Error::Client`]) when someone else wrote
    /// first; [`Error::Indeterminate`] when a lost reply cannot be settled.
    pub async fn publish_if_version(&self, value: &T, expected: Option<i32>) -> Result<Stat> {
        let data = self.encode(value)?;
        let attempt = match expected {
            Some(version) => {
                self.client
                    .set_data(&self.path, data.clone(), Some(version))
                    .await
            }
            None => {
                ensure_path(
                    &self.client,
                    parent(&self.path),
                    CreateOptions::persistent(),
                )
                .await?;
                self.client
                    .create(&self.path, data.clone(), &CreateOptions::persistent())
                    .await
                    .map(|(_, stat)| stat)
            }
        };
        match attempt {
            Ok(stat) => Ok(stat),
            Err(e) if e.is_retryable() => {
                // Was it applied? Read it back.
                pause_then_reconnected(&self.client).await?;
                let want = expected.map_or(0, |v| v + 1);
                match read(&self.client, &self.path).await? {
                    Some((now, stat)) if stat.version == want && now == data => Ok(stat),
                    Some((_, stat)) if Some(stat.version) == expected => {
                        Box::pin(self.publish_if_version(value, expected)).await
                    }
                    None if expected.is_none() => {
                        Box::pin(self.publish_if_version(value, expected)).await
                    }
                    _ => Err(Error::Indeterminate {
                        op: "publish",
                        path: self.path.clone(),
                    }),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
