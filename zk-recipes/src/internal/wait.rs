//! Waiting for a node's deletion.

use zk_client::{Client, EventType, SessionState};

use crate::error::{Error, Result};
use crate::internal::retry::retry;

/// Returns once `path` does not exist (at once if it is already gone). Uses an exists
/// watch, re-armed by the client across reconnects, so a disconnection just makes it
/// wait longer. Fails with [`Error::Expired`] when the session ends.
pub(crate) async fn wait_for_delete(client: &Client, path: &str) -> Result<()> {
    loop {
        let (stat, watcher) =
            retry(client, "watching a node", || client.exists_and_watch(path)).await?;
        if stat.is_none() {
            return Ok(());
        }
        let event = watcher.await;
        match (event.event_type, event.state) {
            (EventType::NodeDeleted, _) => return Ok(()),
            (EventType::Session, SessionState::Expired | SessionState::Closed) => {
                return Err(Error::Expired {
                    during: "waiting for a node's deletion",
                })
            }
            // Data changed, watch removed, ...: look again.
            _ => continue,
        }
    }
}
