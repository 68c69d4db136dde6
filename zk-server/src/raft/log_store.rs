//! openraft's log storage on our WAL: [`LogStore`] implements [`RaftLogReader`] and
//! [`RaftLogStorage`].
//!
//! - Entries are postcard-encoded into WAL records (record index = log index). The
//!   newest entries are also kept in memory, decoded, up to a byte budget, with the log
//!   id of every unpurged entry ([`super::log_memory`]); older unpurged entries are read
//!   back from the WAL when asked for. The WAL is the durable copy.
//! - `append` returns once the entries are readable; the WAL writer calls openraft's
//!   `LogFlushed` after its group fsync.
//! - Every write goes through the WAL writer's queue, so all log and vote I/O happens in
//!   the order openraft issued it: the vote and the purged log id are written (durably,
//!   in their own meta files) from the writer thread after the appends queued before them
//!   are durable; `save_vote` and `purge` return after that.
//! - The committed log id is a hint (any value not above the real one is safe): it is
//!   written from the writer thread after the entries it covers are durable, coalesced
//!   to the newest value, without its own fsync, and at most once per
//!   [`HINT_INTERVAL`] (plus once when the store is dropped): replacing a file per raft
//!   entry cost a create, a write and a rename on the writer thread between group
//!   commits. A damaged committed file reads as "unknown" with a warning. With it, a
//!   restarted node re-applies its committed log at once instead of waiting for a leader.
//! - [`LogStore::flush_progress`] tells the proposer how far the log is durable, so it
//!   can cut its next batch exactly when openraft can take it (see `pipeline::submit`).

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

// tokio's clock is the OS's on the WAL writer thread (no runtime there); inside a
// simulation, where the WAL writes inline, it is the simulated one, so which hints get
// written (and survive a crash) replays exactly.
use tokio::time::Instant;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageIOError,
    Vote,
};
use parking_lot::{Mutex, RwLock};

use super::log_memory::{read_from_wal, LogMemory, SegmentCache, DEFAULT_MEMORY_BUDGET};
use super::{NodeId, TypeConfig};
use crate::storage::{
    Completion, MetaFile, StorageError, StorageStats, SyncMode, Wal, WalOptions, WalRecord,
};

type RaftStorageError = openraft::StorageError<NodeId>;

const VOTE_FILE: &str = "vote.meta";
const PURGED_FILE: &str = "purged.meta";
const COMMITTED_FILE: &str = "committed.meta";
/// The committed-log-id hint is rewritten at most this often while commits stream in.
pub const HINT_INTERVAL: Duration = Duration::from_millis(100);

/// The raft log of one node (cheap to clone: clones share the same log).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    sync: SyncMode,
    wal: Wal,
    /// The newest entries and every unpurged log id.
    log: Arc<RwLock<LogMemory>>,
    /// `(index, truncations)`: the log is durable up to `index` as of the log's
    /// truncation count `truncations` (set by the WAL writer's completions, used by the
    /// next append to evict: dropping thousands of decoded commands on the writer thread
    /// delayed its next group commit).
    durable: Arc<Mutex<(u64, u64)>>,
    /// The last WAL segment read back (see [`SegmentCache`]).
    segment_cache: SegmentCache,
    vote: Mutex<Option<Vote<NodeId>>>,
    purged: Mutex<Option<LogId<NodeId>>>,
    committed: Mutex<Option<LogId<NodeId>>>,
    vote_file: Arc<MetaFile<Vote<NodeId>>>,
    purged_file: Arc<MetaFile<LogId<NodeId>>>,
    committed_writer: Arc<CommittedWriter>,
    progress: FlushProgress,
}

/// Writes the newest committed log id from the WAL writer thread.
struct CommittedWriter {
    file: MetaFile<LogId<NodeId>>,
    /// Sequence number of the newest `save_committed`.
    newest: AtomicU64,
    /// When the hint was last written (writer thread only).
    written_at: Mutex<Option<Instant>>,
    /// The newest value not yet written (skipped inside [`HINT_INTERVAL`]).
    unwritten: Mutex<Option<LogId<NodeId>>>,
}

impl CommittedWriter {
    /// On the writer thread, once the entries up to `c` are durable: writes `c` unless a
    /// newer value is queued behind it or the hint was written within [`HINT_INTERVAL`]
    /// (then `c` waits in `unwritten` for a later call or the store's drop).
    fn write(&self, c: LogId<NodeId>, seq: u64) {
        if self.newest.load(Ordering::Acquire) != seq {
            return;
        }
        let now = Instant::now();
        let mut at = self.written_at.lock();
        if at.is_some_and(|t| now.duration_since(t) < HINT_INTERVAL) {
            *self.unwritten.lock() = Some(c);
            return;
        }
        *at = Some(now);
        *self.unwritten.lock() = None;
        self.store(c);
    }

    fn store(&self, c: LogId<NodeId>) {
        if let Err(e) = self.file.store(&c, SyncMode::Never) {
            tracing::warn!(error = %e, "cannot save the committed-log-id hint");
        }
    }
}

/// How far the log is appended and durable (cheap to clone): the proposer waits for the
/// entry it proposed to be durable before it cuts the next batch.
#[derive(Clone)]
pub struct FlushProgress {
    /// Index of the last entry handed to `append` (0: none).
    appended: Arc<AtomicU64>,
    /// Index of the last durable entry (0: none).
    flushed: tokio::sync::watch::Sender<u64>,
}

impl FlushProgress {
    fn new(last: u64) -> FlushProgress {
        FlushProgress {
            appended: Arc::new(AtomicU64::new(last)),
            flushed: tokio::sync::watch::Sender::new(last),
        }
    }

    /// Index of the last entry appended so far: an entry proposed now gets a higher one.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    /// Resolves once the log is durable up to `index` (pending forever if the log is
    /// truncated below it: callers race it with the entry's own completion).
    pub async fn flushed(&self, index: u64) {
        let mut rx = self.flushed.subscribe();
        if rx.wait_for(|f| *f >= index).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Runs on the writer thread after everything queued is durable; the WAL's own
        // drop (a field, dropped after this) waits for it.
        let w = self.committed_writer.clone();
        self.wal.submit_flush(Box::new(move |r| {
            if let (Ok(()), Some(c)) = (r, w.unwritten.lock().take()) {
                w.store(c);
            }
        }));
    }
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl LogStore {
    /// Opens (creating) the log in `dir` (a node's `<data-dir>/log`): loads the vote, the
    /// purged and committed log ids, recovers the WAL, and checks the log has no hole.
    pub async fn open(dir: &Path, sync: SyncMode) -> Result<LogStore, StorageError> {
        LogStore::open_with(dir, WalOptions::new(sync)).await
    }

    /// [`LogStore::open`] with explicit WAL options (segment size).
    pub async fn open_with(dir: &Path, opts: WalOptions) -> Result<LogStore, StorageError> {
        LogStore::open_budgeted(dir, opts, DEFAULT_MEMORY_BUDGET).await
    }

    /// [`LogStore::open_with`] keeping at most about `budget` bytes (encoded) of entries
    /// in memory (the rest are read back from the WAL when needed).
    pub async fn open_budgeted(
        dir: &Path,
        opts: WalOptions,
        budget: usize,
    ) -> Result<LogStore, StorageError> {
        crate::storage::ensure_dir(dir)?;
        let vote_file = MetaFile::<Vote<NodeId>>::new(dir, VOTE_FILE);
        let purged_file = MetaFile::<LogId<NodeId>>::new(dir, PURGED_FILE);
        let committed_file = MetaFile::<LogId<NodeId>>::new(dir, COMMITTED_FILE);
        let vote = vote_file.load()?;
        let purged = purged_file.load()?;
        let mut committed = match committed_file.load() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the committed-log-id hint");
                None
            }
        };

        let (wal, records) = Wal::open(dir, opts)?;
        let log = recovered_log(dir, records, purged, budget)?;

        let last = log.last_log_id().or(purged);
        let progress = FlushProgress::new(last.map_or(0, |l| l.index));
        if let Some(c) = committed {
            if last.is_none_or(|l| c.index > l.index) {
                tracing::warn!(
                    committed = %c,
                    "the committed-log-id hint is past the end of the log; ignoring it"
                );
                committed = None;
            }
        }
        Ok(LogStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                sync: opts.sync,
                wal,
                log: Arc::new(RwLock::new(log)),
                durable: Arc::new(Mutex::new((0, 0))),
                segment_cache: SegmentCache::default(),
                vote: Mutex::new(vote),
                purged: Mutex::new(purged),
                committed: Mutex::new(committed),
                vote_file: Arc::new(vote_file),
                purged_file: Arc::new(purged_file),
                committed_writer: Arc::new(CommittedWriter {
                    file: committed_file,
                    newest: AtomicU64::new(0),
                    written_at: Mutex::new(None),
                    unwritten: Mutex::new(None),
                }),
                progress,
            }),
        })
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The WAL writer's counters (fsync latency, group commits), for `/metrics`.
    pub fn storage_stats(&self) -> Arc<StorageStats> {
        self.inner.wal.stats().clone()
    }

    /// How far the log is appended and durable.
    pub fn flush_progress(&self) -> FlushProgress {
        self.inner.progress.clone()
    }

    /// Makes `entries` readable at once and queues them on the WAL; `done` runs on the
    /// writer thread once they are durable.
    fn append_entries(
        &self,
        entries: Vec<Entry<TypeConfig>>,
        done: Completion,
    ) -> Result<(), StorageError> {
        let mut records = Vec::with_capacity(entries.len());
        for e in &entries {
            let data = postcard::to_allocvec(e).map_err(|source| StorageError::Encode {
                what: "log entry",
                source,
            })?;
            records.push(WalRecord {
                index: e.log_id.index,
                data,
            });
        }
        let last = entries.last().map(|e| e.log_id.index);
        let (truncations, evicted) = {
            let (durable, as_of) = *self.inner.durable.lock();
            let mut log = self.inner.log.write();
            // Written: older entries can now be read back from the WAL.
            let evicted = log.evict(durable, as_of);
            for (e, r) in entries.into_iter().zip(&records) {
                log.push(e, r.data.len());
            }
            (log.truncations(), evicted)
        };
        // Freed outside the lock.
        drop(evicted);
        let done: Completion = match last {
            Some(last) => {
                self.inner.progress.appended.store(last, Ordering::Release);
                let flushed = self.inner.progress.flushed.clone();
                let durable = self.inner.durable.clone();
                Box::new(move |r| {
                    if r.is_ok() {
                        {
                            let mut d = durable.lock();
                            if d.1 != truncations || d.0 < last {
                                *d = (last, truncations);
                            }
                        }
                        flushed.send_if_modified(|f| {
                            let newer = last > *f;
                            if newer {
                                *f = last;
                            }
                            newer
                        });
                    }
                    done(r)
                })
            }
            None => done,
        };
        self.inner.wal.submit_append(records, done);
        Ok(())
    }

    /// Runs `f` on the WAL writer thread once everything queued before is durable, and
    /// returns its result.
    async fn after_flush(
        &self,
        f: impl FnOnce() -> Result<(), StorageError> + Send + 'static,
    ) -> Result<(), StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.wal.submit_flush(Box::new(move |r| {
            let _ = tx.send(r.and_then(|()| f()));
        }));
        rx.await.map_err(|_| StorageError::WriterGone {
            path: self.inner.dir.clone(),
        })?
    }
}

/// The in-memory log after a restart, from the recovered WAL records: the newest
/// entries that fit in `budget` decoded, only the log id (the head of the record) of
/// the older ones, which are read back from the WAL when asked for. Decoding every entry
/// here (most of them only to drop them again) cost as much as the replay that follows.
/// Checks that records and entries agree on the index and that there is no hole after
/// `purged`; a payload that does not decode is found when the entry is read.
fn recovered_log(
    dir: &Path,
    records: Vec<WalRecord>,
    purged: Option<LogId<NodeId>>,
    budget: usize,
) -> Result<LogMemory, StorageError> {
    let inconsistent = |reason: String| StorageError::Inconsistent {
        path: dir.to_path_buf(),
        reason,
    };
    let live = |r: &WalRecord| purged.is_none_or(|p| r.index > p.index);
    // Records from `decode_from` on are kept decoded: the newest within the budget.
    let mut held = 0usize;
    let mut decode_from = records.len();
    for (i, r) in records.iter().enumerate().rev() {
        if !live(r) || held + r.data.len() > budget {
            break;
        }
        held += r.data.len();
        decode_from = i;
    }
    let mut log = LogMemory::new(purged, budget);
    let mut expect = purged.map(|p| p.index + 1);
    for (i, r) in records.into_iter().enumerate() {
        if !live(&r) {
            continue;
        }
        if let Some(x) = expect {
            if r.index != x {
                return Err(inconsistent(format!(
                    "hole in the log: expected entry {x}, found {} (purged up to {})",
                    r.index,
                    purged.map_or("nothing".to_string(), |p| p.to_string())
                )));
            }
        }
        expect = Some(r.index + 1);
        let undecodable = |e: postcard::Error| {
            inconsistent(format!("log entry {} does not decode: {e}", r.index))
        };
        let log_id = if i >= decode_from {
            let entry: Entry<TypeConfig> = postcard::from_bytes(&r.data).map_err(undecodable)?;
            let id = entry.log_id;
            if id.index == r.index {
                log.push(entry, r.data.len());
            }
            id
        } else {
            let (id, _) =
                postcard::take_from_bytes::<LogId<NodeId>>(&r.data).map_err(undecodable)?;
            if id.index == r.index {
                log.push_on_disk(id);
            }
            id
        };
        if log_id.index != r.index {
            return Err(inconsistent(format!(
                "WAL record {} holds log entry {}",
                r.index, log_id.index
            )));
        }
    }
    Ok(log)
}

/// Recovers the in-memory log from `records` as a restart does and drops it: for the
/// WAL fuzz target, which must exercise the production recovery path.
pub(crate) fn check_recovery(
    dir: &Path,
    records: Vec<WalRecord>,
    purged: Option<LogId<NodeId>>,
    budget: usize,
) -> Result<(), StorageError> {
    recovered_log(dir, records, purged, budget).map(drop)
}

fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: &StorageError) -> RaftStorageError {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, RaftStorageError> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        let (disk, in_memory) = self.inner.log.read().get(start..end);
        if disk.is_empty() {
            // Caught up with memory: the segment read back is no longer needed.
            self.inner.segment_cache.lock().clear();
            return Ok(in_memory);
        }
        let dir = self.inner.dir.clone();
        let cache = self.inner.segment_cache.clone();
        // Inside a simulation the read runs inline: a blocking thread would be outside
        // the simulation (the real file system instead of the simulated disk, and a
        // completion time the seed does not decide).
        let read = if crate::sim::active() {
            read_from_wal(&dir, disk, &cache)
        } else {
            tokio::task::spawn_blocking(move || read_from_wal(&dir, disk, &cache))
                .await
                .map_err(|e| {
                    StorageIOError::read_logs(AnyError::error(format!("WAL read task: {e}")))
                })?
        };
        let mut entries = read.map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        entries.extend(in_memory);
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftStorageError> {
        let purged = *self.inner.purged.lock();
        let last = self.inner.log.read().last_log_id().or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), RaftStorageError> {
        let file = self.inner.vote_file.clone();
        let sync = self.inner.sync;
        let v = *vote;
        self.after_flush(move || file.store(&v, sync))
            .await
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        *self.inner.vote.lock() = Some(v);
        Ok(())
    }

    /// The saved vote, read once at startup, never as a *committed* (leader) vote: a
    /// restarted leader must not resume its old term. openraft 0.9 would restore it as
    /// leader at once, with its first entry of that term as the read index's floor and
    /// the committed index from our hint (written at most every 100 ms), so a `sync`
    /// right after a crash could miss writes already acknowledged (a stale read, found
    /// by zk-chaos after kill -9 of every server); and entries of that term which it had
    /// replicated but not yet fsynced itself could be proposed again, differently, under
    /// the same log id. Uncommitted, the vote still binds the node to its term (it votes
    /// for no one else in it); it starts as a follower and a new election gives a new
    /// term, whose blank entry commits everything before it.
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, RaftStorageError> {
        Ok(self.inner.vote.lock().map(|mut v| {
            v.committed = false;
            v
        }))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), RaftStorageError> {
        *self.inner.committed.lock() = committed;
        let Some(c) = committed else {
            return Ok(());
        };
        let w = self.inner.committed_writer.clone();
        let seq = w.newest.fetch_add(1, Ordering::AcqRel) + 1;
        // Runs after the entries up to `c` (queued earlier) are durable; skipped when a
        // newer value is queued behind it. A hint: no fsync, a failure is only logged.
        self.inner.wal.submit_flush(Box::new(move |r| {
            if r.is_ok() {
                w.write(c, seq);
            }
        }));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, RaftStorageError> {
        Ok(*self.inner.committed.lock())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let last = entries.last().map_or(0, |e| e.log_id.index);
        crate::mark!("append", last, n = entries.len());
        self.append_entries(
            entries,
            Box::new(move |r| {
                crate::mark!("flushed", last);
                callback.log_io_completed(r.map_err(io::Error::other))
            }),
        )
        .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), RaftStorageError> {
        self.inner.log.write().truncate_from(log_id.index);
        let below = log_id.index.saturating_sub(1);
        self.inner.progress.appended.store(below, Ordering::Release);
        self.inner.progress.flushed.send_if_modified(|f| {
            let lower = *f > below;
            if lower {
                *f = below;
            }
            lower
        });
        let done = self
            .inner
            .wal
            .truncate(log_id.index)
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e));
        // (openraft issues no append before this returns, so nothing re-appended at the
        // truncated indexes can have been read back yet.)
        self.inner.segment_cache.lock().truncated();
        done
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), RaftStorageError> {
        // Record the purge durably before any segment disappears, so that on open the
        // first remaining entry always follows the purged id.
        let file = self.inner.purged_file.clone();
        let sync = self.inner.sync;
        self.after_flush(move || file.store(&log_id, sync))
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))?;
        *self.inner.purged.lock() = Some(log_id);
        self.inner.log.write().purge_upto(log_id.index);
        self.inner.segment_cache.lock().clear();
        self.inner
            .wal
            .purge(log_id.index)
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tree::Command;
    use openraft::{CommittedLeaderId, EntryPayload, Membership};
    use std::collections::BTreeSet;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn normal(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(crate::tree::Batch(vec![Command::CloseSession {
                session: index as i64,
            }])),
        }
    }

    /// Appends (the path openraft's `append` takes) and waits for durability.
    async fn append(store: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        store
            .append_entries(entries, Box::new(move |r| drop(tx.send(r))))
            .unwrap();
        rx.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path(), SyncMode::Always).await.unwrap();
        let m = Entry {
            log_id: log_id(1, 0),
            payload: EntryPayload::Membership(Membership::new(
                vec![BTreeSet::from([1, 2, 3])],
                None,
            )),
        };
        append(&mut s, vec![m]).await;
        append(&mut s, (1..=10).map(|i| normal(1, i)).collect()).await;
        s.save_vote(&Vote::new(3, 2)).await.unwrap();
        s.save_committed(Some(log_id(1, 7))).await.unwrap();
        s.purge(log_id(1, 4)).await.unwrap();
        s.truncate(log_id(1, 9)).await.unwrap();
        drop(s);

        let mut s = LogStore::open(dir.path(), SyncMode::Always).await.unwrap();
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(s.read_committed().await.unwrap(), Some(log_id(1, 7)));
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(log_id(1, 4)));
        assert_eq!(st.last_log_id, Some(log_id(1, 8)));
        let got = s.try_get_log_entries(0..100).await.unwrap();
        let idx: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
        assert_eq!(idx, (5..=8).collect::<Vec<_>>());
        assert_eq!(got[0], normal(1, 5));
    }

    #[tokio::test]
    async fn a_hole_after_the_purged_id_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A WAL holding entries 3..=5 while only 1 was purged: entry 2 is missing.
        let (wal, _) = Wal::open(dir.path(), WalOptions::new(SyncMode::Never)).unwrap();
        let records = (3..=5)
            .map(|i| WalRecord {
                index: i,
                data: postcard::to_allocvec(&normal(1, i)).unwrap(),
            })
            .collect();
        wal.append(records).await.unwrap();
        drop(wal);
        let purged = MetaFile::<LogId<NodeId>>::new(dir.path(), PURGED_FILE);
        purged.store(&log_id(1, 1), SyncMode::Never).unwrap();
        let err = LogStore::open(dir.path(), SyncMode::Never)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("hole in the log: expected entry 2, found 3"),
            "{err}"
        );

        // Purged up to 2: consistent.
        purged.store(&log_id(1, 2), SyncMode::Never).unwrap();
        let mut s = LogStore::open(dir.path(), SyncMode::Never).await.unwrap();
        assert_eq!(s.try_get_log_entries(..).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn newest_committed_hint_survives_a_quick_succession_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path(), SyncMode::Never).await.unwrap();
        append(&mut s, (1..=3).map(|i| normal(1, i)).collect()).await;
        // The second and third come within HINT_INTERVAL of the first (or not: either
        // way the newest value is on disk once the store is gone).
        for i in 1..=3 {
            s.save_committed(Some(log_id(1, i))).await.unwrap();
            s.inner.wal.flush().await.unwrap();
        }
        drop(s);
        let mut s = LogStore::open(dir.path(), SyncMode::Never).await.unwrap();
        assert_eq!(s.read_committed().await.unwrap(), Some(log_id(1, 3)));
    }

    #[tokio::test]
    async fn flush_progress_follows_appends_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path(), SyncMode::Always).await.unwrap();
        let progress = s.flush_progress();
        assert_eq!(progress.appended(), 0);
        append(&mut s, (1..=4).map(|i| normal(1, i)).collect()).await;
        assert_eq!(progress.appended(), 4);
        tokio::time::timeout(Duration::from_secs(10), progress.flushed(4))
            .await
            .unwrap();
        s.truncate(log_id(1, 3)).await.unwrap();
        assert_eq!(progress.appended(), 2);
        assert_eq!(*progress.flushed.borrow(), 2);
        drop(s);
        // Reopened: progress starts at the recovered end of the log.
        let s = LogStore::open(dir.path(), SyncMode::Always).await.unwrap();
        assert_eq!(s.flush_progress().appended(), 2);
    }

    #[tokio::test]
    async fn entries_beyond_the_memory_budget_are_read_back_from_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        // Tiny segments, so reads span several of them; a budget of about two entries.
        let opts = WalOptions {
            sync: SyncMode::Never,
            segment_bytes: 4096,
            preallocate_bytes: 0,
        };
        let size = postcard::to_allocvec(&normal(1, 1)).unwrap().len();
        let mut s = LogStore::open_budgeted(dir.path(), opts, 2 * size)
            .await
            .unwrap();
        for chunk in (1..=600u64).collect::<Vec<_>>().chunks(50) {
            let term = if chunk[0] > 300 { 2 } else { 1 };
            append(&mut s, chunk.iter().map(|i| normal(term, *i)).collect()).await;
        }
        assert!(
            s.inner.log.read().held_entries() <= 52,
            "evicted as written"
        );
        let expect = |r: std::ops::RangeInclusive<u64>| -> Vec<Entry<TypeConfig>> {
            r.map(|i| normal(if i > 300 { 2 } else { 1 }, i)).collect()
        };
        assert_eq!(
            s.try_get_log_entries(1..=600).await.unwrap(),
            expect(1..=600)
        );
        assert_eq!(
            s.try_get_log_entries(290..310).await.unwrap(),
            expect(290..=309)
        );
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_log_id, Some(log_id(2, 600)));

        // Truncate and purge into the part only on disk.
        s.truncate(log_id(2, 400)).await.unwrap();
        s.purge(log_id(1, 100)).await.unwrap();
        append(&mut s, (400..=420).map(|i| normal(3, i)).collect()).await;
        let got = s.try_get_log_entries(..).await.unwrap();
        assert_eq!(got.len(), 320);
        assert_eq!(got[0], normal(1, 101));
        assert_eq!(got[299], normal(3, 400));
        assert_eq!(got[298], normal(2, 399));
        drop(s);

        // Reopened with the same budget: the same log.
        let mut s = LogStore::open_budgeted(dir.path(), opts, 2 * size)
            .await
            .unwrap();
        assert_eq!(s.try_get_log_entries(..).await.unwrap(), got);
        assert_eq!(
            s.get_log_state().await.unwrap().last_log_id,
            Some(log_id(3, 420))
        );
    }

    #[tokio::test]
    async fn damaged_committed_hint_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path(), SyncMode::Never).await.unwrap();
        append(&mut s, (1..=3).map(|i| normal(1, i)).collect()).await;
        s.save_committed(Some(log_id(1, 3))).await.unwrap();
        s.inner.wal.flush().await.unwrap();
        drop(s);
        std::fs::write(dir.path().join(COMMITTED_FILE), b"garbage").unwrap();
        let mut s = LogStore::open(dir.path(), SyncMode::Never).await.unwrap();
        assert_eq!(s.read_committed().await.unwrap(), None);
        assert_eq!(s.try_get_log_entries(..).await.unwrap().len(), 3);
    }
}
