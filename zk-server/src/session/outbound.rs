//! A session connection's ONE ordered outbound queue: replies and watch events share
//! it, so an event is always written before any reply queued after it.
//!
//! `push` never blocks (apply pushes events while holding the tree lock, and reads push
//! their reply while holding it, which is what makes "event before any later reply that
//! could observe the change" hold). The queue is bounded, in messages and in bytes
//! (`--max-outbound-messages`, `--max-outbound-bytes`): a client that stops reading is
//! disconnected instead of making the server buffer without bound; its session stays,
//! and it reconnects and re-arms its watches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::Stream;
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::Notify;
use zk_proto::pb::ServerMessage;

use crate::admin::metrics::Metrics;
use crate::limits::Limits;

/// Messages a connection may have queued before it is cut off.
pub const DEFAULT_LIMIT: usize = crate::limits::DEFAULT_MAX_OUTBOUND_MESSAGES;

/// Producer handle of a connection's outbound queue (cheap to clone).
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

/// The unsent messages, each with its encoded size, and their total.
#[derive(Default)]
struct Queue {
    messages: VecDeque<(ServerMessage, usize)>,
    bytes: usize,
}

struct Inner {
    queue: Mutex<Queue>,
    notify: Notify,
    closed_notify: Notify,
    closed: AtomicBool,
    overflowed: AtomicBool,
    closing_session: AtomicBool,
    limit: usize,
    max_bytes: usize,
    /// Where a slow-reader disconnect is counted.
    metrics: Option<Arc<Metrics>>,
}

impl Outbound {
    /// An empty queue holding at most `limit` unsent messages (of any size).
    pub fn new(limit: usize) -> Outbound {
        Outbound::bounded(limit, usize::MAX, None)
    }

    /// An empty queue bounded by `limits` (messages and bytes), counting a slow-reader
    /// disconnect in `metrics`.
    pub fn with_limits(limits: &Limits, metrics: Arc<Metrics>) -> Outbound {
        Outbound::bounded(
            limits.max_outbound_messages,
            limits.max_outbound_bytes,
            Some(metrics),
        )
    }

    /// An empty queue holding at most `limit` unsent messages and `max_bytes` unsent
    /// bytes; a message is always accepted into an empty queue, whatever its size.
    fn bounded(limit: usize, max_bytes: usize, metrics: Option<Arc<Metrics>>) -> Outbound {
        Outbound {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                notify: Notify::new(),
                closed_notify: Notify::new(),
                closed: AtomicBool::new(false),
                overflowed: AtomicBool::new(false),
                closing_session: AtomicBool::new(false),
                limit,
                max_bytes,
                metrics,
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
            let size = msg.encoded_len();
            let mut q = self.inner.queue.lock();
            let full = q.messages.len() >= self.inner.limit
                || (!q.messages.is_empty() && q.bytes.saturating_add(size) > self.inner.max_bytes);
            if full {
                let (queued, bytes) = (q.messages.len(), q.bytes);
                // Never sent (the stream ends at once): free them now.
                q.messages.clear();
                q.bytes = 0;
                drop(q);
                tracing::warn!(
                    queued,
                    bytes,
                    max_messages = self.inner.limit,
                    max_bytes = self.inner.max_bytes,
                    "client is not reading its replies and events; closing its connection \
                     (--max-outbound-messages / --max-outbound-bytes)"
                );
                if let Some(m) = &self.inner.metrics {
                    m.limits
                        .slow_readers_closed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                self.inner.overflowed.store(true, Ordering::Release);
                self.close();
                return false;
            }
            q.bytes += size;
            q.messages.push_back((msg, size));
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

    /// Resolves once the queue overflowed (never, if it closes normally): a writer
    /// blocked on a client that does not read races its write against this and gives
    /// up the connection.
    pub async fn overflow(&self) {
        self.closed().await;
        if !self.overflowed() {
            std::future::pending::<()>().await;
        }
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
                let next = {
                    let mut q = inner.queue.lock();
                    let next = q.messages.pop_front();
                    if let Some((_, size)) = &next {
                        q.bytes -= size;
                    }
                    next
                };
                if let Some((msg, _)) = next {
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
    async fn byte_limit_closes_the_connection_but_one_large_message_passes() {
        let big = |xid: i64, n: usize| ServerMessage {
            kind: Some(Kind::Response(Response {
                xid,
                message: "x".repeat(n),
                ..Response::default()
            })),
        };
        let out = Outbound::bounded(100, 1000, None);
        let stream = out.stream();
        assert!(out.push(big(1, 5000)), "alone in the queue: accepted");
        let got: Vec<i64> = stream.take(1).map(|m| xid(&m)).collect().await;
        assert_eq!(got, vec![1]);
        assert!(out.push(big(2, 600)));
        assert!(!out.push(big(3, 600)), "over 1000 queued bytes");
        assert!(out.overflowed());
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
