//! openraft's state machine: applies committed entries to the node's [`Shared`] tree,
//! fires watches, and builds / installs snapshots ([`StateMachine`], [`SnapshotBuilder`]).
//!
//! Ordering (see `state.rs`): an entry is applied under the tree's write lock and its
//! watch events are triggered and `shared.applied` advances before that lock is released. The last applied log id and membership are updated under the same write lock,
//! so a snapshot built under the read lock sees a tree and a log id that match.
//!
//! Persistence: the tree is not written on apply. It is persisted by snapshots (built or
//! installed), each with its last applied log id and membership; on open the newest
//! snapshot is loaded, and openraft re-applies the log after it (up to the committed id
//! the log store saved).

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;

use super::{Member, NodeId, TypeConfig};
use crate::state::Shared;
use crate::storage::{SnapshotFiles, StorageError, SyncMode};
use crate::tree::txn::ZXID_BATCH_BITS;
use crate::tree::{zxid_end, zxid_of, ApplyResult, Command, DataTree};

type RaftStorageError = openraft::StorageError<NodeId>;
type Meta = SnapshotMeta<NodeId, Member>;

/// The raft state machine of one node: the writer of `shared.tree`.
pub struct StateMachine {
    shared: Arc<Shared>,
    inner: Arc<Inner>,
}

/// Builds a snapshot of the state machine (runs concurrently with apply).
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    inner: Arc<Inner>,
}

struct Inner {
    files: SnapshotFiles,
    /// Changed only with `shared.tree` write-locked (lock order: tree, then this).
    applied: Mutex<Applied>,
    /// The log id of the last applied entry, for [`super::commit_push`].
    applied_log_id: tokio::sync::watch::Sender<Option<LogId<NodeId>>>,
    /// Meta of the newest persisted snapshot.
    current: Mutex<Option<Meta>>,
    /// Serialises snapshot file writes (a build and an install may overlap).
    save_lock: Mutex<()>,
    /// Makes snapshot ids unique within this process.
    builds: AtomicU64,
    /// Bytes of the last snapshot built: the next one's buffer starts that big.
    last_len: AtomicUsize,
}

#[derive(Clone, Default)]
struct Applied {
    log_id: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Member>,
}

/// Decodes a snapshot read from disk into its raft meta and tree; an error names the
/// file. Shared by opening and by the snapshot fuzz target.
pub(crate) fn decode_snapshot(
    snap: &crate::storage::StoredSnapshot,
) -> Result<(Meta, DataTree), StorageError> {
    let meta: Meta = postcard::from_bytes(&snap.meta).map_err(|source| StorageError::Decode {
        what: "snapshot meta",
        path: snap.path.clone(),
        offset: 0,
        source,
    })?;
    let tree = DataTree::from_snapshot_bytes(&snap.data).map_err(|e| StorageError::Corrupt {
        path: snap.path.clone(),
        offset: 0,
        reason: format!("the tree does not decode: {e}"),
    })?;
    Ok((meta, tree))
}

impl StateMachine {
    /// Opens the snapshot directory `dir` (a node's `<data-dir>/snapshots`), loads the
    /// newest snapshot into `shared.tree` and sets `shared.applied`. Snapshot files are
    /// fsynced.
    pub fn open(dir: &Path, shared: Arc<Shared>) -> Result<StateMachine, StorageError> {
        StateMachine::open_with(dir, shared, SyncMode::Always)
    }

    /// [`StateMachine::open`] with an explicit sync mode for snapshot files.
    pub fn open_with(
        dir: &Path,
        shared: Arc<Shared>,
        sync: SyncMode,
    ) -> Result<StateMachine, StorageError> {
        let files = SnapshotFiles::open(dir, sync)?;
        let mut applied = Applied::default();
        let mut current = None;
        if let Some(snap) = files.load_latest()? {
            let (meta, tree) = decode_snapshot(&snap)?;
            tracing::info!(path = %snap.path.display(), snapshot = %meta, "loaded snapshot");
            *shared.tree.write() = tree;
            shared.applied.send_replace(zxid(meta.last_log_id.as_ref()));
            applied = Applied {
                log_id: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
            current = Some(meta);
        }
        Ok(StateMachine {
            shared,
            inner: Arc::new(Inner {
                files,
                applied: Mutex::new(applied),
                current: Mutex::new(current),
                save_lock: Mutex::new(()),
                builds: AtomicU64::new(0),
                last_len: AtomicUsize::new(0),
                applied_log_id: tokio::sync::watch::Sender::new(None),
            }),
        })
    }

    /// Keeps the session tracker and connections in step with the sessions table: a
    /// created session is tracked from now; a closed (or expired) one is forgotten and
    /// its connection to this node, if any, is cut (unless it is the connection that
    /// asked for the close, which answers first).
    fn track_sessions(&self, cmd: &Command, result: &ApplyResult) {
        match (cmd, result) {
            (_, ApplyResult::SessionCreated { id, timeout_ms, .. }) => {
                self.shared.tracker.track(*id, *timeout_ms);
            }
            (Command::CloseSession { session }, ApplyResult::SessionClosed(Ok(()))) => {
                self.shared.tracker.forget(*session);
                self.shared.watches.session_closed(*session);
            }
            _ => {}
        }
    }

    /// The log id of the last entry applied, as it changes (for pushing the commit index).
    pub fn applied_log_ids(&self) -> super::commit_push::AppliedLogId {
        self.inner.applied_log_id.subscribe()
    }

    /// The node state this state machine writes.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// The applied zxid once the entry `log_id` is applied (0 for none).
fn zxid(log_id: Option<&LogId<NodeId>>) -> i64 {
    log_id.map_or(0, |l| zxid_end(l.index))
}

fn snapshot_error(
    meta: Option<&Meta>,
    verb: ErrorVerb,
    e: &dyn std::error::Error,
) -> RaftStorageError {
    StorageIOError::new(
        ErrorSubject::Snapshot(meta.map(|m| m.signature())),
        verb,
        AnyError::error(e),
    )
    .into()
}

impl Inner {
    /// Writes the snapshot file and makes it current unless a newer one already is.
    fn persist(&self, meta: &Meta, data: &[u8]) -> Result<(), StorageError> {
        let meta_bytes = postcard::to_allocvec(meta).map_err(|source| StorageError::Encode {
            what: "snapshot meta",
            source,
        })?;
        let index = meta.last_log_id.map_or(0, |l| l.index);
        let _g = self.save_lock.lock();
        self.files.save(index, &meta_bytes, data)?;
        let mut current = self.current.lock();
        if current
            .as_ref()
            .is_none_or(|c| c.last_log_id <= meta.last_log_id)
        {
            *current = Some(meta.clone());
        }
        Ok(())
    }
}

/// Runs blocking file work off the async threads (in the caller inside a simulation,
/// whose simulated disk and determinism a thread pool would escape).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    if crate::sim::active() {
        return f();
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, RaftStorageError> {
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        let built = blocking(move || {
            let hint = inner.last_len.load(Ordering::Relaxed);
            let (data, applied) = {
                let tree = shared.tree.read();
                let applied = inner.applied.lock().clone();
                (tree.to_snapshot_bytes_sized(hint + hint / 16), applied)
            };
            inner.last_len.store(data.len(), Ordering::Relaxed);
            let seq = inner.builds.fetch_add(1, Ordering::Relaxed);
            let snapshot_id = match &applied.log_id {
                Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
                None => format!("none-{seq}"),
            };
            let meta = Meta {
                last_log_id: applied.log_id,
                last_membership: applied.membership,
                snapshot_id,
            };
            inner.persist(&meta, &data)?;
            Ok((meta, data))
        })
        .await;
        let (meta, data) = built.map_err(|e| snapshot_error(None, ErrorVerb::Write, &e))?;
        tracing::info!(snapshot = %meta, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>), RaftStorageError> {
        let a = self.inner.applied.lock().clone();
        Ok((a.log_id, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<ApplyResult>>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut last = None;
        for entry in entries {
            let log_id = entry.log_id;
            if i64::try_from(log_id.index).map_or(true, |i| i > (i64::MAX >> ZXID_BATCH_BITS)) {
                return Err(RaftStorageError::from(StorageIOError::new(
                    ErrorSubject::Apply(log_id),
                    ErrorVerb::Write,
                    AnyError::error("log index too large for a zxid"),
                )));
            }
            let mut tree = self.shared.tree.write();
            let results = match entry.payload {
                EntryPayload::Normal(batch) => {
                    let mut results = Vec::with_capacity(batch.0.len());
                    for (i, cmd) in batch.0.iter().enumerate() {
                        let zxid = zxid_of(log_id.index, i);
                        events.clear();
                        let result = tree.apply(zxid, cmd, &mut events);
                        // Still under the write lock: no read + watch can slip in between.
                        self.shared
                            .watches
                            .trigger(zxid, &events, |p| tree.node_acl(p));
                        self.track_sessions(cmd, &result);
                        results.push(result);
                    }
                    self.inner.applied.lock().log_id = Some(log_id);
                    self.shared
                        .applied_ops
                        .fetch_add(batch.0.len() as u64, Ordering::Relaxed);
                    results
                }
                EntryPayload::Blank => {
                    self.inner.applied.lock().log_id = Some(log_id);
                    Vec::new()
                }
                EntryPayload::Membership(m) => {
                    let mut a = self.inner.applied.lock();
                    a.log_id = Some(log_id);
                    a.membership = StoredMembership::new(Some(log_id), m);
                    Vec::new()
                }
            };
            // Advanced under the write lock too: a read (under the read lock) reports
            // exactly the zxid of the state it saw.
            self.shared.applied.send_replace(zxid(Some(&log_id)));
            drop(tree);
            crate::mark!("apply", log_id.index);
            out.push(results);
            last = Some(log_id);
        }
        if last.is_some() {
            self.inner.applied_log_id.send_replace(last);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
            inner: self.inner.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let data = snapshot.into_inner();
        let tree = DataTree::from_snapshot_bytes(&data)
            .map_err(|e| snapshot_error(Some(meta), ErrorVerb::Read, &e))?;
        // Durable first: a crash after this point restarts from the new snapshot.
        let inner = self.inner.clone();
        let m = meta.clone();
        blocking(move || inner.persist(&m, &data))
            .await
            .map_err(|e| snapshot_error(Some(meta), ErrorVerb::Write, &e))?;
        {
            let mut t = self.shared.tree.write();
            *t = tree;
            let mut a = self.inner.applied.lock();
            a.log_id = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        }
        self.shared
            .applied
            .send_replace(zxid(meta.last_log_id.as_ref()));
        tracing::info!(snapshot = %meta, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, RaftStorageError> {
        let Some(meta) = self.inner.current.lock().clone() else {
            return Ok(None);
        };
        let inner = self.inner.clone();
        let index = meta.last_log_id.map_or(0, |l| l.index);
        let stored = blocking(move || inner.files.load(index))
            .await
            .map_err(|e| snapshot_error(Some(&meta), ErrorVerb::Read, &e))?;
        let on_disk: Meta = postcard::from_bytes(&stored.meta).map_err(|source| {
            let e = StorageError::Decode {
                what: "snapshot meta",
                path: stored.path.clone(),
                offset: 0,
                source,
            };
            snapshot_error(Some(&meta), ErrorVerb::Read, &e)
        })?;
        Ok(Some(Snapshot {
            meta: on_disk,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tree::Command;
    use openraft::{CommittedLeaderId, Membership};
    use std::collections::BTreeSet;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entries() -> Vec<Entry<TypeConfig>> {
        vec![
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Membership(Membership::new(
                    vec![BTreeSet::from([1, 2, 3])],
                    None,
                )),
            },
            Entry {
                log_id: log_id(1, 2),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(1, 3),
                payload: EntryPayload::Normal(crate::tree::Batch(vec![Command::CloseSession {
                    session: 7,
                }])),
            },
        ]
    }

    fn open(dir: &Path) -> (StateMachine, Arc<Shared>) {
        let shared = Arc::new(Shared::new());
        (StateMachine::open(dir, shared.clone()).unwrap(), shared)
    }

    #[tokio::test]
    async fn apply_advances_applied_and_membership() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, shared) = open(dir.path());
        let mut rx = shared.applied.subscribe();
        let out = sm.apply(entries()).await.unwrap();
        assert_eq!(out.len(), 3);
        assert!(out[0].is_empty());
        assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(3));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), crate::tree::zxid_end(3));
        let (applied, mem) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 3)));
        assert_eq!(mem.log_id(), &Some(log_id(1, 1)));
        assert!(sm.get_current_snapshot().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn built_snapshot_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, _shared) = open(dir.path());
        sm.apply(entries()).await.unwrap();
        let built = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(1, 3)));
        drop(sm);

        let (mut sm, shared) = open(dir.path());
        assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(3));
        let (applied, mem) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 3)));
        assert_eq!(mem, built.meta.last_membership);
        let cur = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(cur.meta, built.meta);
        assert_eq!(cur.snapshot.into_inner(), built.snapshot.into_inner());
    }

    #[tokio::test]
    async fn installed_snapshot_replaces_state_and_survives_reopen() {
        let leader_dir = tempfile::tempdir().unwrap();
        let (mut leader, _) = open(leader_dir.path());
        leader.apply(entries()).await.unwrap();
        let snap = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let (mut sm, shared) = open(dir.path());
        let mut rx = sm.begin_receiving_snapshot().await.unwrap();
        *rx = *snap.snapshot;
        sm.install_snapshot(&snap.meta, rx).await.unwrap();
        assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(3));
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
        drop(sm);

        let (mut sm, shared) = open(dir.path());
        assert_eq!(shared.applied_zxid(), crate::tree::zxid_end(3));
        let cur = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(cur.meta, snap.meta);
    }

    #[tokio::test]
    async fn corrupt_newest_snapshot_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, _) = open(dir.path());
        sm.apply(entries()).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        drop(sm);
        let path = dir.path().join("snapshot-00000000000000000003.snap");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = StateMachine::open(dir.path(), Arc::new(Shared::new()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("snapshot-00000000000000000003.snap"), "{err}");
    }
}
