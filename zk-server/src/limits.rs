//! Per-client resource limits: what one client (an IP address, a session, a
//! connection) may hold on a server, so that a misbehaving or hostile client gets a
//! clear error or loses its own connection while every other session goes on.
//!
//! | limit | on excess |
//! |---|---|
//! | [`Limits::max_client_cnxns`] | the new connection is closed at once (ZooKeeper's `maxClientCnxns`) |
//! | [`Limits::max_outstanding_requests`] | the server stops reading that connection until replies go out (back-pressure, no error) |
//! | [`Limits::max_watches_per_session`] | the request that would add a watch fails with `QuotaExceeded` |
//! | [`Limits::max_outbound_messages`] / [`Limits::max_outbound_bytes`] | a client that does not read its replies and events is disconnected; its session stays and can reattach |
//!
//! Request and frame sizes are limited by `max_data_bytes` and `max_frame_bytes` (see
//! [`crate::config::Config`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// ZooKeeper's default `maxClientCnxns`.
pub const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
/// Requests one session may have in flight before its connection is no longer read.
pub const DEFAULT_MAX_OUTSTANDING_REQUESTS: usize = 1000;
/// Watches one session may hold on one server.
pub const DEFAULT_MAX_WATCHES_PER_SESSION: usize = 100_000;
/// Replies and events a connection may have queued, unsent, before it is cut off.
pub const DEFAULT_MAX_OUTBOUND_MESSAGES: usize = 16 * 1024;
/// Bytes of replies and events a connection may have queued, unsent, before it is cut
/// off (a single message larger than this is still sent when the queue is empty).
pub const DEFAULT_MAX_OUTBOUND_BYTES: usize = 64 << 20;

/// The per-client limits of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent client-port connections from one IP address (all protocols,
    /// four-letter words included); 0 = unlimited.
    pub max_client_cnxns: u32,
    /// Requests of one connection in flight (submitted, or waiting behind a write for
    /// FIFO order) before the server stops reading it; at least 1.
    pub max_outstanding_requests: usize,
    /// Watch registrations one session may hold on this server; 0 = unlimited.
    pub max_watches_per_session: usize,
    /// Unsent replies and events a connection may have queued; at least 1.
    pub max_outbound_messages: usize,
    /// Unsent bytes of replies and events a connection may have queued; at least 1.
    pub max_outbound_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_client_cnxns: DEFAULT_MAX_CLIENT_CNXNS,
            max_outstanding_requests: DEFAULT_MAX_OUTSTANDING_REQUESTS,
            max_watches_per_session: DEFAULT_MAX_WATCHES_PER_SESSION,
            max_outbound_messages: DEFAULT_MAX_OUTBOUND_MESSAGES,
            max_outbound_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
        }
    }
}

impl Limits {
    /// Why these limits cannot be used, if they cannot.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.max_outstanding_requests == 0 {
            return Err("max_outstanding_requests must be > 0");
        }
        if self.max_outbound_messages == 0 {
            return Err("max_outbound_messages must be > 0");
        }
        if self.max_outbound_bytes == 0 {
            return Err("max_outbound_bytes must be > 0");
        }
        Ok(())
    }
}

/// Counts client-port connections per IP address against `max_client_cnxns`.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max: u32,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnectionLimiter {
    /// A limiter allowing `max` connections per IP (0 = unlimited).
    pub fn new(max: u32) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            max,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, held until the guard drops; `None` if
    /// `ip` already has the maximum.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionGuard> {
        let ip = ip.to_canonical();
        let mut map = self.per_ip.lock();
        let n = map.entry(ip).or_insert(0);
        if self.max != 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ConnectionGuard {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections currently held by `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.per_ip
            .lock()
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(0)
    }

    /// The configured maximum (0 = unlimited).
    pub fn max(&self) -> u32 {
        self.max
    }
}

/// One connection's slot; released on drop.
#[derive(Debug)]
pub struct ConnectionGuard {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut map = self.limiter.per_ip.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_ip_and_releases_on_drop() {
        let l = ConnectionLimiter::new(2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let g1 = l.try_acquire(a).expect("first");
        let _g2 = l.try_acquire(a).expect("second");
        assert!(l.try_acquire(a).is_none(), "third from the same IP");
        let _gb = l.try_acquire(b).expect("another IP is unaffected");
        drop(g1);
        assert_eq!(l.count(a), 1);
        assert!(l.try_acquire(a).is_some(), "a slot came back");
        // An IPv4-mapped IPv6 address is the same client.
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().expect("ip");
        let _gm = l.try_acquire(mapped).expect("second from b");
        assert!(l.try_acquire(b).is_none());
    }

    #[test]
    fn zero_is_unlimited() {
        let l = ConnectionLimiter::new(0);
        let a: IpAddr = [10, 0, 0, 1].into();
        let guards: Vec<_> = (0..500).filter_map(|_| l.try_acquire(a)).collect();
        assert_eq!(guards.len(), 500);
    }
}
