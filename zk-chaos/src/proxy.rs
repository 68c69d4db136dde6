//! A fault-injecting TCP proxy for tests: put it between a client (or a peer) and a real
//! server to make the network misbehave on demand.
//!
//! [`Proxy::start`] listens on `127.0.0.1:0` and forwards every accepted connection to
//! the target, byte for byte. Controls, each taking effect at once on every connection:
//! - [`Proxy::pause`]: stop forwarding in both directions, keeping the sockets open (a
//!   silent server, a network partition without resets). Bytes already read are held
//!   and delivered on resume; connections accepted while paused are paused too.
//! - [`Proxy::resume`]: forward again.
//! - [`Proxy::cut`]: close every current connection (both sides see the connection end);
//!   later connections are unaffected.
//! - [`Proxy::reject`]: while `true`, new connections are accepted and closed at once,
//!   before anything is forwarded (the server looks unreachable).
//! - [`Proxy::set_delay`]: hold every chunk of bytes this long before forwarding it (a
//!   slow link; zero turns it off).
//!
//! Loopback only. Everything is bounded: connecting to the target gives up after
//! [`CONNECT_TIMEOUT`], and dropping the proxy stops the listener and closes every
//! connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the proxy tries to reach the target for one accepted connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

struct Shared {
    target: SocketAddr,
    /// true while forwarding is paused.
    paused: watch::Sender<bool>,
    /// Bumped by every `cut`: connections opened before it close.
    cuts: watch::Sender<u64>,
    /// Added latency per forwarded chunk, in microseconds (0: none).
    delay_us: AtomicU64,
    rejecting: AtomicBool,
    /// Connections forwarding (or paused) right now.
    open: AtomicUsize,
    /// Connections accepted and forwarded since the start (rejected ones not counted).
    accepted: AtomicUsize,
}

/// A running proxy; dropping it stops it and closes its connections.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target` (`host:port`, loopback).
    pub async fn start(target: &str) -> std::io::Result<Proxy> {
        let target: SocketAddr = tokio::net::lookup_host(target)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("no address for {target}")))?;
        if !target.ip().is_loopback() {
            return Err(std::io::Error::other(format!(
                "the test proxy only forwards to loopback, not {target}"
            )));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            paused: watch::Sender::new(false),
            cuts: watch::Sender::new(0),
            delay_us: AtomicU64::new(0),
            rejecting: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let listener = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            listener,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` for a connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Stops forwarding in both directions; sockets stay open.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Forwards again (held bytes first).
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Closes every current connection, on both sides.
    pub fn cut(&self) {
        self.shared.cuts.send_modify(|n| *n += 1);
    }

    /// While `true`, new connections are closed as soon as they are accepted.
    pub fn reject(&self, reject: bool) {
        self.shared.rejecting.store(reject, Ordering::SeqCst);
    }

    /// Delays every forwarded chunk by `delay` (both directions; zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_us.store(us, Ordering::SeqCst);
    }

    /// Connections open through the proxy right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted and forwarded since the start.
    pub fn accepted_connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.listener.abort();
        // The connection tasks share `shared` (and its senders), so end them explicitly.
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Transient accept errors (EMFILE and the like): do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if shared.rejecting.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        // Subscribe now, so a cut issued after this accept closes this connection.
        let mut cuts = shared.cuts.subscribe();
        cuts.borrow_and_update();
        tokio::spawn(connection(inbound, shared.clone(), cuts));
    }
}

/// Counts an open connection for as long as it lives.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(inbound: TcpStream, shared: Arc<Shared>, mut cuts: watch::Receiver<u64>) {
    let outbound = tokio::select! {
        r = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.target)) => match r {
            Ok(Ok(s)) => s,
            _ => return,
        },
        _ = cuts.changed() => return,
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    shared.open.fetch_add(1, Ordering::SeqCst);
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    let _guard = OpenGuard(shared.clone());
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = pump(in_read, out_write, shared.paused.subscribe(), &shared);
    let down = pump(out_read, in_write, shared.paused.subscribe(), &shared);
    // Both directions until both are done (half-close is forwarded), or a cut. Returning
    // drops every half: both sockets close.
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cuts.changed() => {}
    }
}

/// Waits until forwarding is not paused; false if the proxy is gone.
async fn unpaused(paused: &mut watch::Receiver<bool>) -> bool {
    paused.wait_for(|p| !*p).await.is_ok()
}

/// Copies `from` to `to`, holding while paused; forwards EOF as a write shutdown.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
    shared: &Shared,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !unpaused(&mut paused).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(n) => n,
                Err(_) => return,
            },
            // Paused while waiting to read: stop reading.
            _ = paused.wait_for(|p| *p) => continue,
        };
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        let delay = shared.delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_micros(delay)).await;
        }
        // Paused while the read completed: hold the bytes until resumed.
        if !unpaused(&mut paused).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    const SHORT: Duration = Duration::from_millis(200);
    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn forwards_pauses_and_resumes() {
        let p = Proxy::start(&echo().await.to_string())
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(p.addr()).await.expect("connect");
        let got = tokio::time::timeout(LONG, roundtrip(&mut s, b"hello")).await;
        assert_eq!(got.expect("in time").expect("echo"), b"hello");
        assert_eq!(p.open_connections(), 1);

        p.pause();
        s.write_all(b"held").await.expect("write while paused");
        let mut buf = [0u8; 4];
        assert!(
            tokio::time::timeout(SHORT, s.read_exact(&mut buf))
                .await
                .is_err(),
            "nothing comes back while paused"
        );
        assert_eq!(p.open_connections(), 1, "the connection stays open");
        p.resume();
        tokio::time::timeout(LONG, s.read_exact(&mut buf))
            .await
            .expect("held bytes delivered after resume")
            .expect("read");
        assert_eq!(&buf, b"held");
    }

    #[tokio::test]
    async fn cut_closes_current_connections_only() {
        let p = Proxy::start(&echo().await.to_string())
            .await
            .expect("proxy");
        let mut old = TcpStream::connect(p.addr()).await.expect("connect");
        roundtrip(&mut old, b"x").await.expect("echo");
        p.cut();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(LONG, old.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        tokio::time::timeout(LONG, async {
            while p.open_connections() != 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("connection count drops");

        let mut new = TcpStream::connect(p.addr()).await.expect("connect again");
        let got = tokio::time::timeout(LONG, roundtrip(&mut new, b"y")).await;
        assert_eq!(got.expect("in time").expect("echo"), b"y");
    }

    #[tokio::test]
    async fn reject_refuses_new_connections_until_lifted() {
        let p = Proxy::start(&echo().await.to_string())
            .await
            .expect("proxy");
        let mut kept = TcpStream::connect(p.addr()).await.expect("connect");
        roundtrip(&mut kept, b"a").await.expect("echo");
        p.reject(true);
        let mut s = TcpStream::connect(p.addr()).await.expect("tcp accept");
        let mut buf = [0u8; 1];
        let _ = s.write_all(b"b").await;
        let n = tokio::time::timeout(LONG, s.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        assert_eq!(p.accepted_connections(), 1);
        // Existing connections are unaffected.
        roundtrip(&mut kept, b"c").await.expect("still forwarding");
        p.reject(false);
        let mut s = TcpStream::connect(p.addr()).await.expect("connect");
        let got = tokio::time::timeout(LONG, roundtrip(&mut s, b"d")).await;
        assert_eq!(got.expect("in time").expect("echo"), b"d");
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_everything() {
        let p = Proxy::start(&echo().await.to_string())
            .await
            .expect("proxy");
        let addr = p.addr();
        let mut s = TcpStream::connect(addr).await.expect("connect");
        roundtrip(&mut s, b"x").await.expect("echo");
        drop(p);
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(LONG, s.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }

    #[tokio::test]
    async fn delay_holds_bytes_then_delivers_them() {
        let p = Proxy::start(&echo().await.to_string())
            .await
            .expect("proxy");
        p.set_delay(Duration::from_millis(300));
        let mut s = TcpStream::connect(p.addr()).await.expect("connect");
        s.write_all(b"slow").await.expect("write");
        let mut buf = [0u8; 4];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), s.read_exact(&mut buf))
                .await
                .is_err(),
            "nothing arrives before the delay"
        );
        tokio::time::timeout(LONG, s.read_exact(&mut buf))
            .await
            .expect("delivered after the delay")
            .expect("read");
        assert_eq!(&buf, b"slow");
        p.set_delay(Duration::ZERO);
        let got = tokio::time::timeout(LONG, roundtrip(&mut s, b"fast")).await;
        assert_eq!(got.expect("in time").expect("echo"), b"fast");
    }

    #[tokio::test]
    async fn refuses_non_loopback_targets() {
        assert!(Proxy::start("192.0.2.1:80").await.is_err());
    }
}
