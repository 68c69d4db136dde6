//! A granted node (lock, lease, leadership): its fencing token, the `lost()` monitor,
//! fenced writes, and its release.

use std::future::Future;
use std::time::Duration;

use futures::future::OptionFuture;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use zk_client::{Client, EventType, Op, OpResult, SessionState};

use crate::error::{Error, Result};
use crate::fencing::FencingToken;
use crate::internal::lock_delay;
use crate::internal::retry::wait_connected;
use crate::internal::sequence::{delete_own, Node};

/// The default safety margin of the client-side lease: a tenth of the session timeout.
pub(crate) fn default_margin(client: &Client) -> Duration {
    client.session_timeout() / 10
}

/// A node that was granted; released (deleted) by [`Held::release`] or, best effort, on
/// drop.
pub(crate) struct Held {
    client: Client,
    node: Node,
    lost: watch::Receiver<bool>,
    monitor: JoinHandle<()>,
    /// For lock-delay: the directory whose data records a clean release.
    marker_dir: Option<String>,
    released: bool,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("path", &self.node.path)
            .field("token", &self.node.token)
            .field("lost", &*self.lost.borrow())
            .finish()
    }
}

impl Held {
    /// Starts watching the grant: `lost` turns true when the session ends, when the
    /// client-side lease (minus `margin`) runs out, or when the node is deleted.
    pub fn start(
        client: &Client,
        node: Node,
        margin: Duration,
        marker_dir: Option<String>,
    ) -> Held {
        let (tx, lost) = watch::channel(false);
        let monitor = tokio::spawn(monitor(client.clone(), node.path.clone(), margin, tx));
        Held {
            client: client.clone(),
            node,
            lost,
            monitor,
            marker_dir,
            released: false,
        }
    }

    /// The holder's fencing token.
    pub fn token(&self) -> FencingToken {
        self.node.token
    }

    /// The holder's node.
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// The holder's sequence number in its queue.
    pub fn sequence(&self) -> i64 {
        self.node.seq
    }

    /// True once the grant can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves once the grant can no longer be trusted (at once if already so).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            // An error means the monitor is gone: the holder was released or dropped.
            let _ = rx.wait_for(|lost| *lost).await;
        }
    }

    /// Runs `ops` in a `multi` that first checks the holder's node exists, so the write
    /// lands only while this holder still holds. Returns the results of `ops`.
    pub async fn guarded(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let token = self.node.token.value();
        if self.is_lost() {
            return Err(Error::Fenced {
                token,
                reason: format!("the grant of {} was lost", self.node.path),
            });
        }
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(Op::check(self.node.path.clone(), None));
        all.extend(ops);
        match self.client.multi(all).await {
            Ok(mut results) => {
                results.remove(0);
                Ok(results)
            }
            Err(zk_client::Error::Multi { index: 0, code, .. }) => Err(Error::Fenced {
                token,
                reason: format!("the holder node {} is gone ({code})", self.node.path),
            }),
            Err(zk_client::Error::Multi {
                index,
                code,
                mut results,
            }) => {
                results.remove(0);
                Err(Error::Client(zk_client::Error::Multi {
                    index: index - 1,
                    code,
                    results,
                }))
            }
            Err(zk_client::Error::SessionExpired { .. } | zk_client::Error::Closed) => {
                Err(Error::Fenced {
                    token,
                    reason: "the holder's session ended".to_string(),
                })
            }
            Err(e) => Err(Error::Client(e)),
        }
    }

    /// Deletes the node (with the clean-release marker when lock-delay is on) and waits
    /// for it. Retried on `ConnectionLoss`; a node already gone is fine.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.monitor.abort();
        match self.marker_dir.clone() {
            Some(dir) => lock_delay::release(&self.client, &dir, &self.node).await,
            None => delete_own(&self.client, &self.node.path).await,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.monitor.abort();
        if self.released {
            return;
        }
        // Best effort: queued now (so a later request of this client comes after it).
        let ops = match &self.marker_dir {
            Some(dir) => lock_delay::release_ops(dir, &self.node),
            None => vec![Op::delete(self.node.path.clone(), None)],
        };
        let release = self.client.multi(ops);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, path) = (self.client.clone(), self.node.path.clone());
            runtime.spawn(async move {
                if let Err(e) = release.await {
                    if e.is_retryable() {
                        let _ = delete_own(&client, &path).await;
                    }
                }
            });
        }
    }
}

/// Watches a grant; sets `lost` and, if the session survived, deletes the node (without
/// the clean-release marker: the holder may still be acting on its grant, so a next
/// holder honours lock-delay).
async fn monitor(client: Client, path: String, margin: Duration, lost: watch::Sender<bool>) {
    let reason = watch_grant(&client, &path, margin).await;
    tracing::info!(path, reason, "grant lost");
    let _ = lost.send(true);
    if reason != SESSION_ENDED
        && wait_connected(&client, "releasing a lost grant")
            .await
            .is_ok()
    {
        let _ = delete_own(&client, &path).await;
    }
}

const SESSION_ENDED: &str = "the session ended";

/// Returns why the grant was lost.
async fn watch_grant(client: &Client, path: &str, margin: Duration) -> &'static str {
    let mut states = client.state();
    let mut watcher = None;
    loop {
        if watcher.is_none() && client.current_state() == SessionState::Connected {
            match client.exists_and_watch(path).await {
                Ok((Some(_), w)) => watcher = Some(w),
                Ok((None, _)) => return "the node was deleted",
                Err(e) if e.is_retryable() => {}
                Err(_) => return SESSION_ENDED,
            }
        }
        let now = Instant::now();
        let deadline = client.session_lease().checked_sub(margin).unwrap_or(now);
        if deadline <= now {
            return "the session lease ran out (disconnected too long)";
        }
        let have_watcher = watcher.is_some();
        tokio::select! {
            state = states.next() => match state {
                Some(SessionState::Connected | SessionState::Disconnected) => {}
                _ => return SESSION_ENDED,
            },
            _ = sleep_until(deadline) => {}
            event = OptionFuture::from(watcher.as_mut()), if have_watcher => {
                watcher = None;
                match event.map(|e| (e.event_type, e.state)) {
                    Some((EventType::NodeDeleted, _)) => return "the node was deleted",
                    Some((EventType::Session, SessionState::Expired | SessionState::Closed)) => {
                        return SESSION_ENDED
                    }
                    _ => {}
                }
            }
        }
    }
}
