//! The stream of session states.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use crate::types::SessionState;

/// A stream of [`SessionState`]s: the current state first, then every change. Changes
/// that happen while the stream is not polled are coalesced to the latest. It ends
/// after a terminal state (`Expired` or `Closed`).
#[must_use = "streams do nothing unless polled"]
pub struct StateStream {
    inner: WatchStream<SessionState>,
    done: bool,
}

impl StateStream {
    pub(crate) fn new(rx: watch::Receiver<SessionState>) -> Self {
        StateStream {
            inner: WatchStream::new(rx),
            done: false,
        }
    }
}

impl std::fmt::Debug for StateStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStream")
            .field("done", &self.done)
            .finish()
    }
}

impl Stream for StateStream {
    type Item = SessionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(state)) => {
                if state.is_terminal() {
                    self.done = true;
                }
                Poll::Ready(Some(state))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn yields_current_then_changes_and_ends_after_terminal() {
        let (tx, rx) = watch::channel(SessionState::Connected);
        let mut s = StateStream::new(rx);
        assert_eq!(s.next().await, Some(SessionState::Connected));
        tx.send_replace(SessionState::Disconnected);
        assert_eq!(s.next().await, Some(SessionState::Disconnected));
        tx.send_replace(SessionState::Expired);
        assert_eq!(s.next().await, Some(SessionState::Expired));
        assert_eq!(s.next().await, None);
    }
}
