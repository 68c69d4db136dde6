//! Session open/close and server-initiated reaping of containers and TTL nodes.

use zk_proto::Code;

use super::txn::{session_id_for, ApplyResult, TreeError, TreeEvent};
use super::{DataTree, SessionInfo};

impl DataTree {
    /// Opens a session with id [`session_id_for`]`(zxid)`.
    pub(super) fn create_session(
        &mut self,
        zxid: i64,
        timeout_ms: u32,
        password: [u8; 16],
    ) -> ApplyResult {
        let id = session_id_for(zxid);
        self.sessions.insert(
            id,
            SessionInfo {
                timeout_ms,
                password,
            },
        );
        ApplyResult::SessionCreated {
            id,
            timeout_ms,
            password,
        }
    }

    /// Closes (or expires) a session: deletes its ephemerals in path order, with their
    /// events and parent bookkeeping, then forgets the session.
    pub(super) fn close_session(
        &mut self,
        zxid: i64,
        session: i64,
        events: &mut Vec<TreeEvent>,
    ) -> Result<(), TreeError> {
        if !self.sessions.contains_key(&session) {
            return Err(TreeError::new(
                Code::SessionExpired,
                format!("close_session {session:#x}: session is not open"),
            ));
        }
        let paths: Vec<String> = self
            .ephemerals
            .get(&session)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        let mut undo = Vec::new();
        for path in &paths {
            // Ephemerals never have children, so this always succeeds.
            self.remove_leaf(zxid, path, &mut undo, events);
        }
        self.sessions.remove(&session);
        Ok(())
    }

    /// Deletes `path` if, at `time_ms`, it is an empty container that had children or a
    /// childless TTL node not modified for its TTL. Returns whether it was deleted.
    pub(super) fn reap(
        &mut self,
        zxid: i64,
        path: &str,
        time_ms: i64,
        events: &mut Vec<TreeEvent>,
    ) -> bool {
        if !self.nodes.get(path).is_some_and(|n| n.is_reapable(time_ms)) {
            return false;
        }
        self.remove_leaf(zxid, path, &mut Vec::new(), events)
    }
}
