//! Shared helpers of this half's recipe tests: a real server, clients, time bounds, and
//! forcing a session to expire.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use zk_client::{Client, SessionState};
pub use zk_server::testing::TestServer;

/// A single-node test server (loopback, temp dir, 100 ms ticks).
pub async fn server() -> TestServer {
    TestServer::start().await.expect("start test server")
}

/// A client of `server` with a short session timeout and reconnect backoff.
pub async fn client(server: &TestServer) -> Client {
    Client::builder()
        .servers(&server.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .connect()
        .await
        .expect("connect client")
}

/// The builder `client` uses (for recipes that renew their session).
pub fn builder(server: &TestServer) -> zk_client::ClientBuilder {
    Client::builder()
        .servers(&server.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// Runs a test body with a time bound.
pub async fn bounded<F: Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test exceeded its time bound");
}

/// Session timeout of the clients meant to expire: shorter than the outage that
/// [`expire`] causes, while the other clients (2 s) ride it out.
pub const SHORT: Duration = Duration::from_millis(400);

/// A builder for clients whose session [`expire`] can end.
pub fn short_builder(server: &TestServer) -> zk_client::ClientBuilder {
    builder(server).session_timeout(SHORT)
}

/// Expires `victim`'s session (one with the [`SHORT`] timeout): the server goes away
/// until the victim concludes its session expired, then comes back on the same data.
/// Clients with the 2 s timeout reconnect and keep their sessions; the server removes
/// the victim's ephemerals once it expires the session itself, shortly after restart.
///
/// (Taking the session over from another connection and closing it is racy here: the
/// victim reattaches at once when its connection is taken over.)
pub async fn expire(server: &mut TestServer, victim: &Client) {
    server.stop().await;
    let mut states = victim.state();
    let expired = tokio::time::timeout(Duration::from_secs(5), async {
        use futures::StreamExt;
        while let Some(s) = states.next().await {
            if s == SessionState::Expired {
                return true;
            }
        }
        false
    })
    .await;
    server.restart().await.expect("restart the server");
    assert_eq!(expired, Ok(true), "the victim's session expired");
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
