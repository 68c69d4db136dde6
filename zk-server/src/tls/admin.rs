//! The admin HTTP port over TLS (`--admin-tls`, ZooKeeper's `admin.forceHttps`): each
//! accepted connection completes a TLS handshake (in its own task, bounded in time)
//! before axum serves HTTP on it. A client certificate is asked for per
//! `--admin-tls-client-auth` (ZooKeeper's `admin.needClientAuth`). Plain HTTP on the
//! same port is closed unless `--admin-tls-allow-plaintext` (ZooKeeper's
//! `admin.portUnification`): a connection whose first byte is 0x16 (a TLS handshake
//! record) is TLS, anything else plain HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::io::{Conn, ConnInfo, ServerConn};
use super::reload::LiveConfig;

/// How long a new admin connection may take to send its first byte.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Admin connections that passed the TLS handshake (or plaintext ones, when allowed),
/// as an [`axum::serve::Listener`].
pub struct AdminIncoming {
    rx: mpsc::Receiver<(ServerConn, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for AdminIncoming {
    type Io = ServerConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ServerConn, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (shutdown): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Accepts admin connections on `listener` until `stop` turns true (or the returned
/// listener is dropped); TLS with the current `config`, plaintext only if
/// `allow_plaintext`.
pub fn spawn(
    listener: TcpListener,
    config: LiveConfig,
    allow_plaintext: bool,
    stop: watch::Receiver<bool>,
) -> std::io::Result<AdminIncoming> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let (config, sender) = (&config, &tx);
        crate::api::listener::accept_loop(
            stop,
            &tx,
            || crate::api::listener::accept_next(&listener, "admin accept"),
            |socket, peer| async move {
                let (config, tx) = (config.current(), sender.clone());
                tokio::spawn(serve_one(socket, peer, config, allow_plaintext, tx));
            },
        )
        .await;
    });
    Ok(AdminIncoming { rx, local })
}

/// One admin connection: TLS handshake (or plaintext, when allowed), then to axum.
async fn serve_one(
    socket: TcpStream,
    peer: SocketAddr,
    config: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    allow_plaintext: bool,
    tx: mpsc::Sender<(ServerConn, SocketAddr)>,
) {
    let tls = match tokio::time::timeout(FIRST_BYTE_TIMEOUT, first_byte(&socket)).await {
        Ok(Ok(Some(b))) => b == 0x16,
        _ => return,
    };
    let conn = if tls {
        match super::accept::handshake(&config, socket).await {
            Ok((tls, x509)) => super::accept::tls_conn(tls, Vec::new(), peer, x509),
            Err(e) => {
                tracing::info!(%peer, "admin TLS handshake refused: {e}");
                return;
            }
        }
    } else if allow_plaintext {
        ServerConn {
            conn: Conn::Plain(socket),
            info: ConnInfo {
                remote: Some(peer),
                ..ConnInfo::default()
            },
            slot: None,
        }
    } else {
        tracing::info!(%peer, "plaintext connection on the TLS admin port; closing");
        return;
    };
    let _ = tx.send((conn, peer)).await;
}

/// The first byte of the stream, not consumed (None: closed before sending one).
async fn first_byte(socket: &TcpStream) -> std::io::Result<Option<u8>> {
    let mut buf = [0u8; 1];
    match socket.peek(&mut buf).await? {
        0 => Ok(None),
        _ => Ok(Some(buf[0])),
    }
}
