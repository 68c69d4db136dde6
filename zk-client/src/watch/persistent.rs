//! The persistent watcher returned by [`crate::Client::watch`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use zk_proto::Code;

use crate::error::{Error, Result};
use crate::session::{Command, Failure, Sender, Shared};
use crate::types::WatchedEvent;

/// A persistent (`recursive: false`) or persistent-recursive watch: a stream of
/// [`WatchedEvent`]s that stays armed after each event.
///
/// - Persistent: NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged of its path.
/// - Recursive: NodeCreated, NodeDeleted, NodeDataChanged of its path and every descendant.
/// - Session events ([`crate::EventType::Session`]): `Disconnected` and `Connected` around a
///   reconnect (the watch is re-armed with the last zxid, so nothing is missed), and a
///   final `Expired`/`Closed` after which the stream ends. It also ends after a
///   `PersistentWatchRemoved` event (`remove_watches(path, Any)`).
///
/// Dropping it removes the server-side watch in the background (unless another
/// persistent watcher of the same path and mode remains); [`PersistentWatcher::remove`]
/// does the same and waits for the server.
#[must_use = "streams do nothing unless polled"]
pub struct PersistentWatcher {
    id: u64,
    path: String,
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
    commands: Option<Sender>,
    shared: Arc<Shared>,
}

impl PersistentWatcher {
    pub(crate) fn new(
        id: u64,
        path: String,
        rx: mpsc::UnboundedReceiver<WatchedEvent>,
        commands: Sender,
        shared: Arc<Shared>,
    ) -> Self {
        PersistentWatcher {
            id,
            path,
            rx,
            commands: Some(commands),
            shared,
        }
    }

    /// The watched path (as given to `watch`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Removes the watch and waits for the server to confirm. The removal is queued at
    /// call time. Events still buffered in this watcher are discarded.
    ///
    /// Errors: `ConnectionLoss` if the connection broke before the server answered (the
    /// watch is gone locally and will not be re-armed); `SessionExpired`/`Closed` are
    /// not errors here (the watch is gone with the session).
    pub fn remove(mut self) -> impl Future<Output = Result<()>> + Send + 'static {
        let path = std::mem::take(&mut self.path);
        let (tx, rx) = oneshot::channel();
        let sent = match self.commands.take() {
            Some(commands) => commands
                .send(Command::RemovePersistent {
                    id: self.id,
                    reply: Some(tx),
                })
                .is_ok(),
            None => false,
        };
        async move {
            if !sent {
                return Ok(());
            }
            match rx.await {
                Ok(Ok(resp)) => {
                    let code = Code::from_i32(resp.err);
                    if code.is_ok() || code == Code::NoWatcher {
                        Ok(())
                    } else {
                        Err(Error::from_code(code, "remove_watch", &path, &resp.message))
                    }
                }
                Ok(Err(Failure::ConnectionLoss)) => {
                    Err(Failure::ConnectionLoss.into_error("remove_watch", &path))
                }
                Ok(Err(_)) | Err(_) => Ok(()),
            }
        }
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if let Some(commands) = self.commands.take() {
            if !self.shared.state().is_terminal() {
                let _ = commands.send(Command::RemovePersistent {
                    id: self.id,
                    reply: None,
                });
            }
        }
    }
}

impl std::fmt::Debug for PersistentWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentWatcher")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish()
    }
}

impl Stream for PersistentWatcher {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}
