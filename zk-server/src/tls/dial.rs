//! The dialling side of peer mutual TLS: our certificate, the peer CA, ALPN `h2`, and,
//! with `--peer-tls-verify-id`, a check that the server that answered is the one we
//! meant to reach. The accepting side checks the dialler's id on every call
//! ([`super::peer_id::authorize`]); without this check a valid certificate of server 2
//! answering at server 3's address (a stolen address, a misrouted proxy, a server
//! started with another's address) would receive server 3's votes and log entries.
//!
//! The handshake verifies the chain and the host name as any TLS client does (the host
//! of the dialled address, or `--peer-tls-server-name`); then the certificate must name
//! the expected server the way [`super::peer_id::named_ids`] reads names.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use super::settings::TlsError;
use crate::raft::NodeId;

/// How this node dials its peers over TLS.
#[derive(Clone)]
pub struct PeerDialer {
    config: Arc<rustls::ClientConfig>,
    /// The name to verify instead of the dialled host.
    server_name: Option<String>,
    /// Whether the answering certificate must name the server we meant to reach.
    verify_id: bool,
}

/// Who should answer at the address being dialled (for `verify_id`).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The server id at that address, if known.
    pub id: Option<NodeId>,
    /// Every known `(id, peer address)`: a certificate may name a server by the host
    /// of its address when no other server shares that host.
    pub members: Vec<(NodeId, String)>,
}

/// Why a dial was refused after the TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("no server id is known for peer address {addr} (--peer-tls-verify-id dials only configured or member servers)")]
    UnknownAddress { addr: String },
    #[error("the peer at {addr} presented a certificate of server(s) {found:?} (names {names:?}), not of server {expected}")]
    WrongServer {
        addr: String,
        expected: NodeId,
        found: Vec<NodeId>,
        names: Vec<String>,
    },
    #[error("the peer at {addr} presented no certificate")]
    NoCertificate { addr: String },
    #[error("peer TLS server name {name:?}: {message}")]
    BadName { name: String, message: String },
}

impl PeerDialer {
    /// Our certificate chain and key, the CA peers' certificates must chain to, and the
    /// name to verify (None: the dialled host).
    pub fn new(
        mut config: rustls::ClientConfig,
        server_name: Option<String>,
        verify_id: bool,
    ) -> PeerDialer {
        config.alpn_protocols = vec![b"h2".to_vec()];
        PeerDialer {
            config: Arc::new(config),
            server_name,
            verify_id,
        }
    }

    /// Connects to `host:port` (the dialled address: the peer's, or a proxy's), completes
    /// the handshake and checks the answering server against `expected` (`addr`: the
    /// peer address, for messages).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        addr: &str,
        expected: impl FnOnce() -> Expected,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let io = |e: DialError| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = self.server_name.as_deref().unwrap_or(host).to_string();
        let server_name = ServerName::try_from(name.clone()).map_err(|e| {
            io(DialError::BadName {
                name,
                message: e.to_string(),
            })
        })?;
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(self.config.clone())
            .connect(server_name, tcp)
            .await?;
        if self.verify_id {
            let expected = expected();
            let Some(id) = expected.id else {
                return Err(io(DialError::UnknownAddress {
                    addr: addr.to_string(),
                }));
            };
            let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
                return Err(io(DialError::NoCertificate {
                    addr: addr.to_string(),
                }));
            };
            let names = super::x509::names(cert);
            let members: Vec<(NodeId, &str)> = expected
                .members
                .iter()
                .map(|(id, a)| (*id, a.as_str()))
                .collect();
            let found = super::peer_id::named_ids(&names, &members);
            if !found.contains(&id) {
                let e = DialError::WrongServer {
                    addr: addr.to_string(),
                    expected: id,
                    found: found.into_iter().collect(),
                    names,
                };
                tracing::warn!("peer dial refused: {e}");
                return Err(io(e));
            }
        }
        Ok(tls)
    }
}

/// The client config for dialling peers: `certs`/`key` presented, `roots` trusted.
pub fn client_config(
    roots: rustls::RootCertStore,
    certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> Result<rustls::ClientConfig, TlsError> {
    rustls::ClientConfig::builder_with_provider(super::settings::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))
}
