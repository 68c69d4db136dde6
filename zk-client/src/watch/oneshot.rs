//! The one-shot watcher returned by the `*_and_watch` calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::types::{SessionState, WatchedEvent};

/// A one-shot watch: a future that resolves once, with the first event of its path that
/// concerns it (ZooKeeper's data/exists/child watch).
///
/// It survives reconnects (the client re-arms it with its last zxid, so a change made
/// while disconnected still fires). If the session expires or is closed first, it
/// resolves with an [`crate::EventType::Session`] event whose state is
/// [`SessionState::Expired`] or [`SessionState::Closed`].
///
/// Dropping it is fine: the server-side watch stays until it fires (as in ZooKeeper);
/// the event is then discarded.
#[derive(Debug)]
#[must_use = "a watcher does nothing unless awaited"]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<WatchedEvent>,
}

impl OneshotWatcher {
    pub(crate) fn new(rx: oneshot::Receiver<WatchedEvent>) -> Self {
        OneshotWatcher { rx }
    }
}

impl Future for OneshotWatcher {
    type Output = WatchedEvent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(event)) => Poll::Ready(event),
            // The session task is gone without telling us: the client is closed.
            Poll::Ready(Err(_)) => Poll::Ready(WatchedEvent::session(SessionState::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }
}
