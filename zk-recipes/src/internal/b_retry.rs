//! Retrying idempotent operations across connection losses, and waiting for the session
//! to be usable again.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use zk_client::{Client, SessionState};

use crate::error::{Error, Result};

/// Pause between retries of an operation that failed with a retryable error while the
/// client still looked connected (throttling, server timeouts).
const PAUSE: Duration = Duration::from_millis(20);

/// Waits until `client` is connected. Errors: [`Error::Expired`] / [`Error::Closed`]
/// when the session ends instead.
pub(crate) async fn connected(client: &Client) -> Result<()> {
    let mut states = client.state();
    while let Some(state) = states.next().await {
        match state {
            SessionState::Connected => return Ok(()),
            SessionState::Disconnected => {}
            SessionState::Expired => {
                return Err(Error::Expired {
                    during: "waiting for the session",
                })
            }
            SessionState::Closed => return Err(Error::Closed),
        }
    }
    Err(Error::Closed)
}

/// Runs `op` until it succeeds or fails with a non-retryable error. Only for operations
/// that are safe to repeat: after a `ConnectionLoss` the first attempt may have been
/// applied. Waits for the reconnect between attempts; the session ending stops it.
pub(crate) async fn retrying<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zk_client::Result<T>>,
{
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, "retrying after a retryable error");
                pause_then_reconnected(client).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// After a retryable failure: a short pause, then wait for the connection.
pub(crate) async fn pause_then_reconnected(client: &Client) -> Result<()> {
    tokio::time::sleep(PAUSE).await;
    connected(client).await
}
