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

/// Ends `victim`'s session on the server (another connection takes the session over
/// and closes it, as a server-side expiry would), then waits until the victim knows.
pub async fn expire(server: &TestServer, victim: &Client) {
    let thief = Client::builder()
        .servers(&server.connect_string())
        .session(victim.session_id(), victim.session_password())
        .connect()
        .await
        .expect("take the session over");
    thief.close().await.expect("close the stolen session");
    let mut states = victim.state();
    tokio::time::timeout(Duration::from_secs(10), async {
        use futures::StreamExt;
        while let Some(s) = states.next().await {
            if s == SessionState::Expired {
                return;
            }
        }
    })
    .await
    .expect("the victim learns its session expired");
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
