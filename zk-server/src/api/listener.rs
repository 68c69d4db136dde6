//! The client port: one listener, three protocols, told apart by a new connection's
//! first four bytes (peeked, not consumed):
//!
//! - `PRI ` (the HTTP/2 connection preface `PRI * HTTP/2.0`): the native gRPC
//!   protocol; the socket is handed to tonic through [`Incoming`].
//! - four ASCII lowercase letters: a four-letter word ([`crate::admin::fourlw`]).
//! - anything else: a 4-byte big-endian length and a jute ConnectRequest, Apache
//!   ZooKeeper's protocol ([`crate::zkwire::conn`]).
//!
//! - `0x16` (a TLS handshake record): TLS ([`crate::tls`]); after the handshake the
//!   decrypted stream's first four bytes are classified the same way.
//!
//! The four are unambiguous: read as a frame length, `PRI `, four lowercase letters or
//! a first byte 0x16 would announce a packet of more than 369 MB, far beyond any
//! `--max-frame-bytes`, which ZooKeeper clients never send (their ConnectRequest is
//! under 100 bytes). With TLS configured, plaintext connections are closed unless
//! `allow_plaintext` is set.
//!
//! Every accepted connection, whatever its protocol, takes a slot of its client IP's
//! `--max-client-cnxns` ([`crate::limits::ConnectionLimiter`]) until it closes; one over
//! the limit is closed at once, as ZooKeeper does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls;
use tokio_stream::wrappers::ReceiverStream;

use crate::admin::fourlw;
use crate::limits::{ConnectionGuard, ConnectionLimiter};
use crate::pipeline::Pipeline;
use crate::tls::io::{Conn, ConnInfo, ServerConn};
use crate::tls::LiveConfig;
use crate::zkwire;

/// How long a new connection may take to send its first four bytes.
const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);

/// Native (gRPC) connections for `tonic::transport::Server::serve_with_incoming*`.
pub type Incoming = ReceiverStream<Result<ServerConn, std::io::Error>>;

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2: the native gRPC protocol.
    Grpc,
    /// A four-letter word.
    FourLetterWord([u8; 4]),
    /// Apache ZooKeeper's jute protocol.
    ZooKeeper,
    /// A TLS ClientHello.
    Tls,
}

/// Classifies a connection by its first four bytes.
pub fn classify(first: [u8; 4]) -> Protocol {
    if &first == b"PRI " {
        Protocol::Grpc
    } else if first[0] == 0x16 {
        Protocol::Tls
    } else if first.iter().all(u8::is_ascii_lowercase) {
        Protocol::FourLetterWord(first)
    } else {
        Protocol::ZooKeeper
    }
}

/// Accepts client connections on `listener` until `stop` turns true, serving the
/// ZooKeeper protocol and four-letter words itself and handing gRPC connections to the
/// returned stream. The accept task ends when `stop` fires or the stream is dropped.
/// `tls`: the client port's TLS config, if TLS is on (each connection takes the
/// current one: a certificate reload applies to new connections).
pub fn spawn(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    tls: Option<LiveConfig>,
    stop: watch::Receiver<bool>,
) -> (Incoming, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let limiter = ConnectionLimiter::new(pipeline.config.limits.max_client_cnxns);
    let task = tokio::spawn(async move {
        let limiter = &limiter;
        let (pipeline, tls, sender) = (&pipeline, &tls, &tx);
        accept_loop(
            stop,
            &tx,
            || accept_next(&listener, "accept"),
            |socket, peer| async move {
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, "set_nodelay: {e}");
                }
                let Some(slot) = limiter.try_acquire(peer.ip()) else {
                    pipeline
                        .shared
                        .metrics
                        .limits
                        .rejected_connections
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        %peer,
                        max = limiter.max(),
                        "too many connections from {} (--max-client-cnxns {}); closing the new one",
                        peer.ip(),
                        limiter.max()
                    );
                    return;
                };
                tokio::spawn(route(
                    socket,
                    slot,
                    peer,
                    pipeline.clone(),
                    tls.clone(),
                    sender.clone(),
                ));
            },
        )
        .await;
    });
    (ReceiverStream::new(rx), task)
}

/// The accept loop of every listener: hands each connection `accept` yields to
/// `on_accept` (awaited before the next accept), until `stop` turns true or the
/// receiver of `tx` (where the loop's connections go) is dropped.
pub(crate) async fn accept_loop<T, S, A, F, H>(
    mut stop: watch::Receiver<bool>,
    tx: &mpsc::Sender<T>,
    mut accept: impl FnMut() -> A,
    mut on_accept: F,
) where
    A: std::future::Future<Output = (S, SocketAddr)>,
    F: FnMut(S, SocketAddr) -> H,
    H: std::future::Future<Output = ()>,
{
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut stopped => return,
            _ = tx.closed() => return,
            accepted = accept() => accepted,
        };
        on_accept(socket, peer).await;
    }
}

/// The next accepted connection; on errors (typically EMFILE) it logs with `what` and
/// backs off instead of spinning.
pub(crate) async fn accept_next(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(a) => return a,
            Err(e) => {
                tracing::warn!("{what}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn route(
    socket: TcpStream,
    slot: ConnectionGuard,
    peer: SocketAddr,
    p: Arc<Pipeline>,
    tls: Option<LiveConfig>,
    grpc: mpsc::Sender<Result<ServerConn, std::io::Error>>,
) {
    let first = match tokio::time::timeout(SNIFF_TIMEOUT, peek4(&socket)).await {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "peek: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "silent connection closed");
            return;
        }
    };
    let protocol = classify(first);
    match (&tls, protocol) {
        (Some(config), Protocol::Tls) => {
            return route_tls(socket, slot, peer, p, &config.current(), grpc).await
        }
        (None, Protocol::Tls) => {
            tracing::debug!(%peer, "TLS ClientHello on a plaintext client port; closing");
            return;
        }
        (Some(_), _) if !p.config.tls.allow_plaintext => {
            tracing::info!(%peer, "plaintext connection on a TLS client port; closing");
            return;
        }
        _ => {}
    }
    match protocol {
        Protocol::Grpc => {
            let conn = ServerConn {
                conn: Conn::Plain(socket),
                info: ConnInfo {
                    remote: Some(peer),
                    x509: None,
                    cert_names: None,
                },
                // The slot travels with the socket and is released when tonic drops it.
                slot: Some(slot),
            };
            let _ = grpc.send(Ok(conn)).await;
        }
        Protocol::FourLetterWord(word) => {
            fourlw::serve(p, socket, word).await;
            drop(slot);
        }
        Protocol::ZooKeeper => {
            zkwire::conn::serve(p, socket, peer, None).await;
            drop(slot);
        }
        Protocol::Tls => {}
    }
}

/// A TLS connection: handshake, then sniff the decrypted stream's first four bytes.
async fn route_tls(
    socket: TcpStream,
    slot: ConnectionGuard,
    peer: SocketAddr,
    p: Arc<Pipeline>,
    config: &Arc<rustls::ServerConfig>,
    grpc: mpsc::Sender<Result<ServerConn, std::io::Error>>,
) {
    let (mut tls, x509) = match crate::tls::accept::handshake(config, socket).await {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(%peer, "TLS handshake failed: {e}");
            return;
        }
    };
    let mut first = [0u8; 4];
    match tokio::time::timeout(SNIFF_TIMEOUT, tls.read_exact(&mut first)).await {
        Ok(Ok(_)) => {}
        _ => {
            tracing::debug!(%peer, "TLS connection closed before its first bytes");
            return;
        }
    }
    let mut conn = crate::tls::accept::tls_conn(tls, first.to_vec(), peer, x509.clone());
    match classify(first) {
        Protocol::Grpc => {
            conn.slot = Some(slot);
            let _ = grpc.send(Ok(conn)).await;
        }
        Protocol::FourLetterWord(word) => {
            fourlw::serve(p, conn, word).await;
            drop(slot);
        }
        Protocol::ZooKeeper => {
            zkwire::conn::serve(p, conn, peer, x509.as_deref()).await;
            drop(slot);
        }
        Protocol::Tls => tracing::debug!(%peer, "TLS inside TLS; closing"),
    }
}

/// The first four bytes of the stream, without consuming them (None: closed before).
async fn peek4(socket: &TcpStream) -> std::io::Result<Option<[u8; 4]>> {
    let mut buf = [0u8; 4];
    loop {
        let n = socket.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if n >= 4 {
            return Ok(Some(buf));
        }
        // Fewer than four bytes so far: peek returns at once while they are unread, so
        // wait a little for the rest.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_pick_the_protocol() {
        assert_eq!(classify(*b"PRI "), Protocol::Grpc);
        assert_eq!(classify(*b"ruok"), Protocol::FourLetterWord(*b"ruok"));
        assert_eq!(classify(*b"xyzw"), Protocol::FourLetterWord(*b"xyzw"));
        assert_eq!(classify([0, 0, 0, 45]), Protocol::ZooKeeper);
        assert_eq!(classify(*b"RUOK"), Protocol::ZooKeeper);
        assert_eq!(classify([0x16, 3, 1, 0]), Protocol::Tls);
    }
}
