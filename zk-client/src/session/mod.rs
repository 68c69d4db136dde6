//! The session: one task per [`crate::Client`] owns the gRPC stream. At call time a
//! request is written straight onto the stream while the session is connected and
//! nothing is queued before it ([`wire`]), or else handed to the task as a [`Command`]
//! through an unbounded channel; the task matches replies to the pending requests,
//! routes watch events, pings, reconnects and re-arms watches.
//!
//! - [`task`]: the task itself (serve a connection, reconnect, close, expire).
//! - [`connect`]: open one connection and do the connect handshake.
//! - [`pending`]: requests in flight, by xid, in send order.
//! - [`wire`]: xids, pending requests and direct writes, shared by callers and the task.
//! - [`heartbeat`]: when to ping, when the connection is dead, when the session is.
//! - [`hosts`]: connect-string parsing and server rotation.
//! - [`backoff`]: the reconnect delay schedule.

pub(crate) mod backoff;
mod connect;
pub(crate) mod heartbeat;
pub(crate) mod hosts;
mod pending;
mod task;
pub(crate) mod wire;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use zk_proto::pb;

use crate::error::Error;
use crate::types::SessionState;
use crate::watch::registry::WatchRegistration;

pub(crate) use task::{start, Config};
pub(crate) use wire::Sender;

/// Why a request got no reply from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection broke (or was not up) before the reply.
    ConnectionLoss,
    /// The session expired.
    Expired,
    /// The client was closed.
    Closed,
}

impl Failure {
    pub(crate) fn into_error(self, op: &'static str, path: &str) -> Error {
        match self {
            Failure::ConnectionLoss => Error::ConnectionLoss {
                op,
                path: path.to_string(),
            },
            Failure::Expired => Error::SessionExpired {
                op,
                path: path.to_string(),
            },
            Failure::Closed => Error::Closed,
        }
    }

    /// The failure to report when the task is gone: it ended in `state`.
    pub(crate) fn after(state: SessionState) -> Failure {
        match state {
            SessionState::Expired => Failure::Expired,
            _ => Failure::Closed,
        }
    }
}

/// Where the task sends a request's outcome: the raw response (its `err` is mapped by the
/// caller, who knows the op and the path) or why there is none.
pub(crate) type ReplySender = oneshot::Sender<Result<pb::Response, Failure>>;

/// What a client hands the session task.
pub(crate) enum Command {
    /// Send a request; on success register `watch` (before `reply` completes).
    Request {
        op: pb::request::Op,
        watch: Option<WatchRegistration>,
        reply: ReplySender,
    },
    /// A persistent watcher was dropped or `remove()`d.
    RemovePersistent { id: u64, reply: Option<ReplySender> },
    /// Close the session (`reply: None` when the last client clone was dropped).
    Close { reply: Option<oneshot::Sender<()>> },
}

/// Session facts the task publishes and clients read without a round trip.
#[derive(Debug)]
pub(crate) struct Shared {
    state: watch::Sender<SessionState>,
    session_id: AtomicI64,
    password: Mutex<Vec<u8>>,
    timeout_ms: AtomicU64,
    last_zxid: AtomicI64,
    lease: Mutex<Instant>,
    next_watcher_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            state: watch::Sender::new(SessionState::Disconnected),
            session_id: AtomicI64::new(0),
            password: Mutex::new(Vec::new()),
            timeout_ms: AtomicU64::new(0),
            last_zxid: AtomicI64::new(0),
            lease: Mutex::new(Instant::now()),
            next_watcher_id: AtomicU64::new(1),
        }
    }

    pub(crate) fn state(&self) -> SessionState {
        *self.state.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<SessionState> {
        self.state.subscribe()
    }

    pub(crate) fn set_state(&self, state: SessionState) {
        self.state.send_if_modified(|s| {
            let changed = *s != state && !s.is_terminal();
            if changed {
                *s = state;
            }
            changed
        });
    }

    pub(crate) fn session_id(&self) -> i64 {
        self.session_id.load(Ordering::Acquire)
    }

    pub(crate) fn password(&self) -> Vec<u8> {
        self.password.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Acquire))
    }

    pub(crate) fn last_zxid(&self) -> i64 {
        self.last_zxid.load(Ordering::Acquire)
    }

    /// Raises the last zxid seen (never lowers it).
    pub(crate) fn saw_zxid(&self, zxid: i64) {
        self.last_zxid.fetch_max(zxid, Ordering::AcqRel);
    }

    pub(crate) fn lease(&self) -> Instant {
        self.lease
            .lock()
            .map(|l| *l)
            .unwrap_or_else(|_| Instant::now())
    }

    /// A request sent at `sent_at` was acknowledged: the session lives at least until
    /// `sent_at + timeout`.
    pub(crate) fn acknowledged(&self, sent_at: Instant) {
        let until = sent_at + self.timeout();
        if let Ok(mut lease) = self.lease.lock() {
            if until > *lease {
                *lease = until;
            }
        }
    }

    pub(crate) fn attached(&self, session_id: i64, password: &[u8], timeout: Duration) {
        self.session_id.store(session_id, Ordering::Release);
        if let Ok(mut p) = self.password.lock() {
            *p = password.to_vec();
        }
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.timeout_ms.store(ms, Ordering::Release);
    }

    pub(crate) fn next_watcher_id(&self) -> u64 {
        self.next_watcher_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_stick_and_zxid_only_rises() {
        let s = Shared::new();
        s.set_state(SessionState::Connected);
        s.set_state(SessionState::Expired);
        s.set_state(SessionState::Connected);
        assert_eq!(s.state(), SessionState::Expired);
        s.saw_zxid(5);
        s.saw_zxid(3);
        assert_eq!(s.last_zxid(), 5);
        assert_eq!(Failure::after(SessionState::Expired), Failure::Expired);
        assert_eq!(Failure::after(SessionState::Closed), Failure::Closed);
    }
}
