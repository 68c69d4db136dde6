//! Session timing, from the negotiated timeout: ping after a third of it idle, declare the
//! connection dead after two thirds without hearing from the server, and the session
//! surely expired after the whole timeout without contact.

use std::time::Duration;

use tokio::time::Instant;

/// The floor for the timeout used in timing, so a nonsensical 0 cannot spin the task.
const MIN_TIMEOUT: Duration = Duration::from_millis(300);

/// When to ping, when the connection is dead, when the session is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heartbeat {
    timeout: Duration,
    last_sent: Instant,
    last_heard: Instant,
}

impl Heartbeat {
    pub(crate) fn new(timeout: Duration, now: Instant) -> Self {
        Heartbeat {
            timeout: timeout.max(MIN_TIMEOUT),
            last_sent: now,
            last_heard: now,
        }
    }

    /// We wrote something to the server.
    pub(crate) fn sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// The server sent us something.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Ping when nothing was sent for a third of the timeout.
    pub(crate) fn ping_at(&self) -> Instant {
        self.last_sent + self.timeout / 3
    }

    /// The connection is dead when nothing was heard for two thirds of the timeout.
    pub(crate) fn dead_at(&self) -> Instant {
        self.last_heard + self.timeout * 2 / 3
    }

    /// The session is surely expired on the servers when nothing was heard for the
    /// whole timeout (the servers count from their last contact, which is no later).
    pub(crate) fn expired_at(&self) -> Instant {
        self.last_heard + self.timeout
    }

    /// How long to wait for the reply to a close.
    pub(crate) fn close_wait(&self) -> Duration {
        self.timeout * 2 / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_the_timeout() {
        let t0 = Instant::now();
        let mut h = Heartbeat::new(Duration::from_secs(9), t0);
        assert_eq!(h.ping_at(), t0 + Duration::from_secs(3));
        assert_eq!(h.dead_at(), t0 + Duration::from_secs(6));
        assert_eq!(h.expired_at(), t0 + Duration::from_secs(9));
        h.sent(t0 + Duration::from_secs(1));
        assert_eq!(h.ping_at(), t0 + Duration::from_secs(4));
        h.heard(t0 + Duration::from_secs(2));
        assert_eq!(h.dead_at(), t0 + Duration::from_secs(8));
        assert_eq!(
            Heartbeat::new(Duration::ZERO, t0).ping_at(),
            t0 + Duration::from_millis(100)
        );
    }
}
