//! Waiting for the connection and retrying idempotent steps after `ConnectionLoss`.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use zk_client::{Client, SessionState};

use crate::error::{Error, Result};

/// Waits until the session is connected. Fails with [`Error::Expired`] once it has ended.
pub(crate) async fn wait_connected(client: &Client, during: &'static str) -> Result<()> {
    let mut states = client.state();
    while let Some(state) = states.next().await {
        match state {
            SessionState::Connected => return Ok(()),
            SessionState::Disconnected => continue,
            SessionState::Expired | SessionState::Closed => break,
        }
    }
    Err(Error::Expired { during })
}

/// Runs `step` until it succeeds or fails with a non-retryable error. After a retryable
/// failure (`ConnectionLoss`, throttling) it waits for the connection, with a short
/// growing pause so a state change not yet published cannot make it spin. Only for steps
/// that are safe to repeat.
pub(crate) async fn retry<T, F, Fut>(
    client: &Client,
    during: &'static str,
    mut step: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zk_client::Result<T>>,
{
    let mut pause = Duration::from_millis(10);
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, during, "retrying after a transient failure");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
                wait_connected(client, during).await?;
            }
            Err(e) => return Err(Error::from_client(during, e)),
        }
    }
}
