//! Shared helpers for the integration tests: real servers on loopback (in-process, via
//! `zk_server::testing`), clients connected to them, and time bounds.

pub mod certs;
/// The fault-injecting TCP proxy (it lives in `zk-chaos`, which uses it on every link).
pub use zk_chaos::proxy;

use std::future::Future;
use std::time::Duration;

pub use zk_server::testing::TestServer;

use zk_client::Client;

/// Installs a test tracing subscriber once (RUST_LOG controls it; quiet by default).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,openraft=error")),
        )
        .with_test_writer()
        .try_init();
}

/// Starts a single-node test server (ephemeral ports, temp dir, 100 ms ticks).
pub async fn server() -> TestServer {
    init_tracing();
    TestServer::start().await.expect("start test server")
}

/// A client session on `server`.
pub async fn client(server: &TestServer) -> Client {
    Client::connect(&server.connect_string())
        .await
        .expect("connect client")
}

/// A client session on the servers `servers` only (no fallback elsewhere): a 10 s
/// session timeout and quick reconnects (20-200 ms), for tests that move, cut off or
/// restart servers.
pub async fn client_only(servers: &str) -> Client {
    Client::builder()
        .servers(servers)
        .session_timeout(Duration::from_secs(10))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .expect("connect")
}

/// Runs a test body with a time bound, so a hang fails instead of blocking CI.
pub async fn bounded<F: Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test exceeded its time bound");
}

/// Polls `check` every 20 ms until it is true, failing after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A bare protocol session (no SDK): for tests that need a client to vanish without
/// closing its session, or to send what the SDK would refuse to.
pub mod raw {
    use futures::StreamExt;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use zk_proto::pb::{
        self, client_message::Kind as In, server_message::Kind as Out,
        zoo_keeper_client::ZooKeeperClient,
    };

    /// An open raw session stream.
    pub struct RawSession {
        pub tx: mpsc::Sender<pb::ClientMessage>,
        pub rx: tonic::Streaming<pb::ServerMessage>,
        pub connected: pb::ConnectResponse,
    }

    /// Opens a stream and sends `connect`; returns the session or None if the server
    /// ended the stream (refused).
    pub async fn open(addr: &str, connect: pb::ConnectRequest) -> Option<RawSession> {
        let mut client = ZooKeeperClient::connect(format!("http://{addr}"))
            .await
            .ok()?;
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::ClientMessage {
            kind: Some(In::Connect(connect)),
        })
        .await
        .ok()?;
        let mut stream = client
            .session(ReceiverStream::new(rx))
            .await
            .ok()?
            .into_inner();
        match stream.next().await {
            Some(Ok(pb::ServerMessage {
                kind: Some(Out::Connected(c)),
            })) => Some(RawSession {
                tx,
                rx: stream,
                connected: c,
            }),
            _ => None,
        }
    }

    impl RawSession {
        /// Sends a request and returns the next response (skipping events).
        pub async fn call(&mut self, xid: i64, op: pb::request::Op) -> Option<pb::Response> {
            self.tx
                .send(pb::ClientMessage {
                    kind: Some(In::Request(pb::Request { xid, op: Some(op) })),
                })
                .await
                .ok()?;
            while let Some(Ok(m)) = self.rx.next().await {
                if let Some(Out::Response(r)) = m.kind {
                    return Some(r);
                }
            }
            None
        }
    }
}
