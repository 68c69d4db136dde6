//! The server side of a TLS handshake, bounded in time, and the client identity it
//! proves; an accept loop for the peer port (mutual TLS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::io::{Conn, ConnInfo, Prefixed, ServerConn};
use super::reload::LiveConfig;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes the handshake on `socket`; the client's verified certificate subject, if
/// it presented one. A failure (a bad or missing certificate under `need`, garbage, a
/// timeout) is an error: the caller drops the connection.
pub async fn handshake(
    config: &Arc<rustls::ServerConfig>,
    socket: TcpStream,
) -> std::io::Result<(TlsStream<TcpStream>, Option<Arc<str>>)> {
    let accept = TlsAcceptor::from(config.clone()).accept(socket);
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))??;
    let subject = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|c| super::x509::subject_dn(c))
        .map(Arc::from);
    Ok((tls, subject))
}

/// Peer-port connections for tonic's `serve_with_incoming`: each accepted socket
/// completes a mutual-TLS handshake (in its own task) before tonic sees it.
pub fn spawn_incoming(
    listener: TcpListener,
    config: LiveConfig,
    stop: watch::Receiver<bool>,
) -> ReceiverStream<Result<ServerConn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let (config, sender) = (&config, &tx);
        crate::api::listener::accept_loop(
            stop,
            &tx,
            || crate::api::listener::accept_next(&listener, "peer accept"),
            |socket, peer| async move {
                let _ = socket.set_nodelay(true);
                let (config, tx) = (config.current(), sender.clone());
                tokio::spawn(async move {
                    match handshake(&config, socket).await {
                        Ok((tls, x509)) => {
                            let names: Option<Arc<[String]>> = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|certs| certs.first())
                                .map(|c| super::x509::names(c).into());
                            let mut conn = tls_conn(tls, Vec::new(), peer, x509);
                            conn.info.cert_names = names;
                            let _ = tx.send(Ok(conn)).await;
                        }
                        Err(e) => tracing::info!(%peer, "peer TLS handshake refused: {e}"),
                    }
                });
            },
        )
        .await;
    });
    ReceiverStream::new(rx)
}

/// A TLS connection whose first bytes `prefix` were already read.
pub fn tls_conn(
    tls: TlsStream<TcpStream>,
    prefix: Vec<u8>,
    remote: SocketAddr,
    x509: Option<Arc<str>>,
) -> ServerConn {
    ServerConn {
        conn: Conn::Tls(Box::new(Prefixed::new(prefix, tls))),
        info: ConnInfo {
            remote: Some(remote),
            x509,
            cert_names: None,
        },
        slot: None,
    }
}
