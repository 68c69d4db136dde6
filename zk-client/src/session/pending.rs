//! Requests in flight on the current connection, in send order. The server answers in
//! request order, so the reply normally matches the front; matching by xid keeps a
//! misbehaving server from completing the wrong request.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::ReplySender;
use crate::watch::registry::WatchRegistration;

/// What a pending xid is for.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A heartbeat.
    Ping,
    /// The close of the session.
    Close,
    /// A caller's request.
    Request {
        reply: ReplySender,
        watch: Option<WatchRegistration>,
    },
    /// Re-arming watches (after a reconnect or a persistent watch removal).
    SetWatches,
    /// An `add_auth` sent again after a reconnect.
    Auth,
    /// Removing the server-side watch of a dropped persistent watcher (server path).
    RemovePersistent {
        path: String,
        reply: Option<ReplySender>,
    },
}

/// One request in flight.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) xid: i64,
    pub(crate) sent_at: Instant,
    pub(crate) kind: Kind,
}

/// The requests in flight, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    queue: VecDeque<Entry>,
}

impl Pending {
    pub(crate) fn push(&mut self, entry: Entry) {
        self.queue.push_back(entry);
    }

    /// The oldest entry with this xid (pings share one xid and are answered in order).
    pub(crate) fn take(&mut self, xid: i64) -> Option<Entry> {
        if self.queue.front().is_some_and(|e| e.xid == xid) {
            return self.queue.pop_front();
        }
        let i = self.queue.iter().position(|e| e.xid == xid)?;
        self.queue.remove(i)
    }

    /// Everything still in flight, oldest first (the connection is gone).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.queue.drain(..)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::PING_XID;

    fn entry(xid: i64) -> Entry {
        let kind = if xid == PING_XID {
            Kind::Ping
        } else {
            Kind::SetWatches
        };
        Entry {
            xid,
            sent_at: Instant::now(),
            kind,
        }
    }

    #[test]
    fn matches_in_order_and_by_xid() {
        let mut p = Pending::default();
        for xid in [1, PING_XID, 2, PING_XID, 3] {
            p.push(entry(xid));
        }
        assert_eq!(p.take(1).map(|e| e.xid), Some(1));
        assert!(matches!(p.take(PING_XID).map(|e| e.kind), Some(Kind::Ping)));
        assert_eq!(p.take(3).map(|e| e.xid), Some(3));
        assert_eq!(p.take(3).map(|e| e.xid), None);
        assert_eq!(p.take(99).map(|e| e.xid), None);
        assert_eq!(p.len(), 2);
        let rest: Vec<i64> = p.drain().map(|e| e.xid).collect();
        assert_eq!(rest, vec![2, PING_XID]);
        assert_eq!(p.len(), 0);
    }
}
