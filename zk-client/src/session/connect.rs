//! Opening one connection: a tonic channel to one server, the `Session` stream, the
//! `connect` message and the server's `connected` answer.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;
use zk_proto::pb::zoo_keeper_client::ZooKeeperClient;
use zk_proto::pb::{self, client_message, server_message};
use zk_proto::Code;

/// Largest message accepted from the server (a big `get_children` or `multi_read`).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// An established connection (the handshake done).
pub(crate) struct Connection {
    /// Messages to the server, written in order by the tonic request stream.
    pub(crate) outbound: mpsc::UnboundedSender<pb::ClientMessage>,
    /// Messages from the server.
    pub(crate) inbound: Streaming<pb::ServerMessage>,
    /// The server's answer to `connect`.
    pub(crate) response: pb::ConnectResponse,
    /// `host:port` of the server.
    pub(crate) host: String,
    /// Keeps the HTTP/2 connection owned for as long as the stream is used.
    _client: ZooKeeperClient<Channel>,
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// Could not reach the server or the stream broke during the handshake; try another.
    Transport(String),
    /// The server refused to attach the session: it expired or is unknown.
    Expired,
    /// The server refused with another code.
    Refused(Code, String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Transport(m) => write!(f, "{m}"),
            ConnectError::Expired => write!(f, "session expired"),
            ConnectError::Refused(code, m) => write!(f, "refused with {code}: {m}"),
        }
    }
}

/// Opens the channel: real TCP, or turmoil's simulated network inside a simulation.
async fn connect(endpoint: Endpoint) -> Result<Channel, tonic::transport::Error> {
    #[cfg(feature = "simulation")]
    if turmoil::in_simulation() {
        let connector = tower::service_fn(|uri: tonic::codegen::http::Uri| async move {
            let host = uri.host().unwrap_or("localhost").to_string();
            let port = uri.port_u16().unwrap_or(80);
            let s = turmoil::net::TcpStream::connect(format!("{host}:{port}")).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
        });
        return endpoint.connect_with_connector(connector).await;
    }
    endpoint.connect().await
}

/// Connects to `host` and performs the handshake. The caller bounds the whole attempt
/// with a timeout; `connect_timeout` bounds the TCP connect. With `tls` the connection
/// is TLS (the server's certificate verified against the configured CA).
pub(crate) async fn open(
    host: &str,
    request: pb::ConnectRequest,
    connect_timeout: Duration,
    tls: Option<&tonic::transport::ClientTlsConfig>,
) -> Result<Connection, ConnectError> {
    let transport = |what: &str, e: &dyn std::fmt::Display| {
        ConnectError::Transport(format!("{host}: {what}: {e}"))
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host}"))
        .map_err(|e| transport("bad address", &e))?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| transport("TLS settings", &e))?;
    }
    let endpoint = endpoint.tcp_nodelay(true).connect_timeout(connect_timeout);
    let channel = connect(endpoint)
        .await
        .map_err(|e| transport("connect", &e))?;
    let mut client = ZooKeeperClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);

    let (outbound, rx) = mpsc::unbounded_channel();
    // The receiver is alive, so this cannot fail; the connect message goes first.
    let _ = outbound.send(pb::ClientMessage {
        kind: Some(client_message::Kind::Connect(request)),
    });
    let mut inbound = client
        .session(UnboundedReceiverStream::new(rx))
        .await
        .map_err(|s| transport("open stream", &s))?
        .into_inner();

    let first = inbound
        .message()
        .await
        .map_err(|s| transport("handshake", &s))?;
    match first.and_then(|m| m.kind) {
        Some(server_message::Kind::Connected(response)) => Ok(Connection {
            outbound,
            inbound,
            response,
            host: host.to_string(),
            _client: client,
        }),
        Some(server_message::Kind::Response(r)) => match Code::from_i32(r.err) {
            Code::SessionExpired | Code::UnknownSession => Err(ConnectError::Expired),
            code => Err(ConnectError::Refused(code, r.message)),
        },
        Some(server_message::Kind::Event(_)) => Err(ConnectError::Transport(format!(
            "{host}: event before connected"
        ))),
        None => Err(ConnectError::Transport(format!(
            "{host}: stream closed during the handshake"
        ))),
    }
}
