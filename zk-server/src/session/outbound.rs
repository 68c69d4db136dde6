//! A session connection's ONE ordered outbound queue: replies and watch events share
//! it, so an event is always written before any reply queued after it.
//!
//! `push` never blocks (apply pushes events while holding the tree lock, and reads push
//! their reply while holding it, which is what makes "event before any later reply that
//! could observe the change" hold). The queue is bounded: a client that stops reading
//! is disconnected instead of making the server buffer without bound; it reconnects
//! and re-arms its watches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::Notify;
use zk_proto::pb::ServerMessage;

/// Messages a connection may have queued before it is cut off.
pub const DEFAULT_LIMIT: usize = 16 * 1024;

/// Producer handle of a connection's outbound queue (cheap to clone).
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<VecDeque<ServerMessage>>,
    notify: Notify,
    closed_notify: Notify,
    closed: AtomicBool,
    overflowed: AtomicBool,
    closing_session: AtomicBool,
    limit: usize,
}

impl Outbound {
    /// An empty queue holding at most `limit` unsent messages.
    pub fn new(limit: usize) -> Outbound {
        Outbound {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                notify: Notify::new(),
                closed_notify: Notify::new(),
                closed: AtomicBool::new(false),
                overflowed: AtomicBool::new(false),
                closing_session: AtomicBool::new(false),
                limit,
            }),
        }
    }

    /// Queues a message. Returns false (and drops it) if the queue is closed, or if it is
    /// full, in which case the connection is closed as too slow.
    pub fn push(&self, msg: ServerMessage) -> bool {
        if self.is_closed() {
            return false;
        }
        {
            let mut q = self.inner.queue.lock();
            if q.len() >= self.inner.limit {
                drop(q);
                tracing::warn!(
                    limit = self.inner.limit,
                    "client is not reading; closing its connection"
                );
                self.inner.overflowed.store(true, Ordering::Release);
                self.close();
                return false;
            }
            q.push_back(msg);
        }
        self.inner.notify.notify_one();
        true
    }

    /// Ends the stream after the messages already queued.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.notify.notify_one();
        self.inner.closed_notify.notify_waiters();
    }

    /// Resolves once the queue is closed (by the connection itself, by overflow, or
    /// because the session moved to another connection or expired).
    pub async fn closed(&self) {
        loop {
            let notified = self.inner.closed_notify.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Marks that this connection's client asked to close its session.
    pub fn mark_closing_session(&self) {
        self.inner.closing_session.store(true, Ordering::Release);
    }

    /// True if this connection's client asked to close its session.
    pub fn is_closing_session(&self) -> bool {
        self.inner.closing_session.load(Ordering::Acquire)
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// True if the queue was closed because the client did not keep up.
    pub fn overflowed(&self) -> bool {
        self.inner.overflowed.load(Ordering::Acquire)
    }

    /// Two handles on the same queue.
    pub fn same(&self, other: &Outbound) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The consumer side: yields queued messages in order; ends when closed and drained
    /// (immediately, without draining, if closed because of overflow).
    pub fn stream(&self) -> impl Stream<Item = ServerMessage> + Send + 'static {
        let inner = self.inner.clone();
        futures::stream::unfold(inner, |inner| async move {
            loop {
                if inner.overflowed.load(Ordering::Acquire) {
                    return None;
                }
                let next = inner.queue.lock().pop_front();
                if let Some(msg) = next {
                    return Some((msg, inner));
                }
                if inner.closed.load(Ordering::Acquire) {
                    return None;
                }
                inner.notify.notified().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use zk_proto::pb::{server_message::Kind, Response};

    fn reply(xid: i64) -> ServerMessage {
        ServerMessage {
            kind: Some(Kind::Response(Response {
                xid,
                ..Response::default()
            })),
        }
    }

    fn xid(m: &ServerMessage) -> i64 {
        match &m.kind {
            Some(Kind::Response(r)) => r.xid,
            _ => -100,
        }
    }

    #[tokio::test]
    async fn keeps_order_and_ends_after_close() {
        let out = Outbound::new(10);
        let stream = out.stream();
        for i in 0..3 {
            assert!(out.push(reply(i)));
        }
        out.close();
        assert!(!out.push(reply(9)));
        let got: Vec<i64> = stream.map(|m| xid(&m)).collect().await;
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn overflow_closes_the_connection() {
        let out = Outbound::new(2);
        let stream = out.stream();
        assert!(out.push(reply(1)));
        assert!(out.push(reply(2)));
        assert!(!out.push(reply(3)));
        assert!(out.overflowed());
        assert_eq!(stream.count().await, 0);
    }
}
