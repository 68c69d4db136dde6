//! openraft's own storage test suite, run against [`LogStore`] + [`StateMachine`] in a
//! fresh temp dir per test.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use super::{LogStore, NodeId, StateMachine, TypeConfig};
use crate::state::Shared;
use crate::storage::SyncMode;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachine), openraft::StorageError<NodeId>> {
        let dir = tempfile::tempdir()
            .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        let log = LogStore::open(&dir.path().join("log"), SyncMode::Never)
            .await
            .map_err(|e| openraft::StorageIOError::write_logs(openraft::AnyError::new(&e)))?;
        let sm = StateMachine::open_with(
            &dir.path().join("snapshots"),
            Arc::new(Shared::new()),
            SyncMode::Never,
        )
        .map_err(|e| openraft::StorageIOError::write_state_machine(openraft::AnyError::new(&e)))?;
        Ok((dir, log, sm))
    }
}

#[test]
#[allow(clippy::unwrap_used)]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}
