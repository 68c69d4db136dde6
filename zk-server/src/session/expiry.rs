//! Session liveness as the leader sees it: the last time each session was heard from.
//! Not replicated: a new leader (or a restarted server) restarts every session's
//! deadline from zero, as ZooKeeper does. Expiry itself is a `CloseSession` log entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

/// One session's liveness clock; connections touch it on every message.
#[derive(Debug)]
pub struct Liveness {
    base: Instant,
    last_seen_ms: AtomicU64,
    timeout_ms: u32,
    closing: AtomicBool,
}

impl Liveness {
    /// Records that the session was heard from now.
    pub fn touch(&self) {
        let now = self.base.elapsed().as_millis() as u64;
        self.last_seen_ms.fetch_max(now, Ordering::Relaxed);
    }

    fn expired_at(&self, now: Instant) -> bool {
        let now_ms = now.saturating_duration_since(self.base).as_millis() as u64;
        now_ms > self.last_seen_ms.load(Ordering::Relaxed) + u64::from(self.timeout_ms)
    }
}

/// Liveness of every open session (on the leader).
#[derive(Debug)]
pub struct SessionTracker {
    base: Instant,
    sessions: Mutex<HashMap<i64, Arc<Liveness>>>,
}

impl Default for SessionTracker {
    fn default() -> Self {
        SessionTracker::new()
    }
}

impl SessionTracker {
    /// No sessions.
    pub fn new() -> SessionTracker {
        SessionTracker {
            base: Instant::now(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Starts (or restarts) tracking a session, alive as of now.
    pub fn track(&self, id: i64, timeout_ms: u32) -> Arc<Liveness> {
        let live = Arc::new(Liveness {
            base: self.base,
            last_seen_ms: AtomicU64::new(0),
            timeout_ms,
            closing: AtomicBool::new(false),
        });
        live.touch();
        self.sessions.lock().insert(id, live.clone());
        live
    }

    /// The liveness clock of a tracked session.
    pub fn get(&self, id: i64) -> Option<Arc<Liveness>> {
        self.sessions.lock().get(&id).cloned()
    }

    /// Stops tracking (the session is closed).
    pub fn forget(&self, id: i64) {
        self.sessions.lock().remove(&id);
    }

    /// Restarts every deadline from now for exactly these sessions (a new leader, or a
    /// restart): `(id, timeout_ms)`.
    pub fn reset(&self, sessions: impl IntoIterator<Item = (i64, u32)>) {
        let mut map = HashMap::new();
        let existing = self.sessions.lock().clone();
        for (id, timeout) in sessions {
            let live = existing
                .get(&id)
                .filter(|l| l.timeout_ms == timeout)
                .cloned()
                .unwrap_or_else(|| {
                    Arc::new(Liveness {
                        base: self.base,
                        last_seen_ms: AtomicU64::new(0),
                        timeout_ms: timeout,
                        closing: AtomicBool::new(false),
                    })
                });
            live.touch();
            live.closing.store(false, Ordering::Relaxed);
            map.insert(id, live);
        }
        *self.sessions.lock() = map;
    }

    /// Sessions whose deadline has passed and that are not already being closed; they
    /// are marked as closing so each is reported once.
    pub fn take_expired(&self, now: Instant) -> Vec<i64> {
        let sessions = self.sessions.lock();
        let mut out = Vec::new();
        for (id, live) in sessions.iter() {
            if live.expired_at(now) && !live.closing.swap(true, Ordering::Relaxed) {
                out.push(*id);
            }
        }
        out.sort_unstable();
        out
    }

    /// Lets a session whose close failed be reported again.
    pub fn unmark(&self, id: i64) {
        if let Some(l) = self.sessions.lock().get(&id) {
            l.closing.store(false, Ordering::Relaxed);
        }
    }

    /// Milliseconds on this tracker's clock (for [`SessionTracker::touched_since`]).
    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Sessions heard from after `since_ms` (this tracker's clock), sorted.
    pub fn touched_since(&self, since_ms: u64) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .sessions
            .lock()
            .iter()
            .filter(|(_, l)| l.last_seen_ms.load(Ordering::Relaxed) > since_ms)
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Number of tracked sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// True when no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn expires_after_timeout_without_touch() {
        let t = SessionTracker::new();
        let a = t.track(1, 100);
        let _b = t.track(2, 1000);
        tokio::time::advance(Duration::from_millis(60)).await;
        a.touch();
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(t.take_expired(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(t.take_expired(Instant::now()), vec![1]);
        // Reported once.
        assert!(t.take_expired(Instant::now()).is_empty());
        t.unmark(1);
        assert_eq!(t.take_expired(Instant::now()), vec![1]);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_restarts_deadlines() {
        let t = SessionTracker::new();
        t.track(1, 100);
        tokio::time::advance(Duration::from_millis(90)).await;
        t.reset([(1, 100), (3, 100)]);
        tokio::time::advance(Duration::from_millis(90)).await;
        assert!(t.take_expired(Instant::now()).is_empty());
        assert_eq!(t.len(), 2);
        tokio::time::advance(Duration::from_millis(20)).await;
        assert_eq!(t.take_expired(Instant::now()), vec![1, 3]);
    }
}
