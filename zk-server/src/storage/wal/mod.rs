//! The write-ahead log: segmented, append-only, checksummed, with one group-commit writer.
//!
//! # On disk
//! Segments `wal-<first index, 20 digits>.log` in one directory. A segment holds records
//! with consecutive indexes starting at its first index:
//! `[len: u32 LE][crc32: u32 LE][index: u64 LE][data]`, where `len` counts `index ‖ data`
//! and the crc covers `len ‖ index ‖ data`. A new segment starts when the last one passes
//! [`WalOptions::segment_bytes`], or when an append does not follow the last index (only
//! after everything below it was purged).
//!
//! The last segment may end in zeros after its last record: it is extended ahead of the
//! records by writing zeros in [`WalOptions::preallocate_bytes`] steps, so that most
//! group commits overwrite blocks that already exist in a file whose size does not
//! change, and their `fdatasync` has no metadata to commit (Apache ZooKeeper
//! preallocates its logs for the same reason). A segment is cut back to its last
//! record when the next one starts, so only the last segment holds zeros.
//!
//! # Recovery ([`Wal::open`])
//! - A torn tail — the last record of the last segment whose header or payload runs past
//!   the end of the file — is what a crash during an unsynced write leaves: it is cut off,
//!   with a warning. It was never acknowledged.
//! - Anything else that does not check out (a checksum mismatch, an impossible length, an
//!   index out of sequence, an incomplete record in a segment that is not the last) is an
//!   error naming the file and byte offset: data is never dropped silently.
//! - A record that seems to run past the end of the last segment is a torn write only
//!   if no intact record starts at or after it: if its bytes check out with the length
//!   "rest of the file", or an intact record follows, its length field was damaged, and
//!   opening fails instead of cutting off intact records. Lengths above
//!   [`MAX_RECORD_LEN`] are always errors.
//! - Zeros from the end of the last record to the end of the last segment are free
//!   (preallocated) space, kept as it is; in a segment that is not the last they are an
//!   error.
//! - In preallocated space a crash leaves each 512-byte sector of the unsynced writes
//!   either written or still zero. So a record whose checksum fails is a torn write
//!   (cut off, as above) only when everything from a sector boundary inside it to the
//!   end of the file is zero, and it does not check out with a shorter length ending in
//!   those zeros (a damaged length field). Anything non-zero after a damaged record
//!   means a later write reached the disk: an error. Residual limit: an intact last
//!   record whose own data ends in zeros across a sector boundary, damaged in its
//!   non-zero part, passes for a torn write.
//! - Residual limit: a torn tail whose surviving bytes happen to contain a complete,
//!   checksummed record image (a client could store one as znode data) is refused
//!   rather than cut — a clear refusal, never a silent loss.
//!
//! # Writing
//! One thread owns the files. Callers queue operations ([`Wal::submit_append`],
//! [`Wal::submit_truncate`], [`Wal::submit_purge`], [`Wal::submit_flush`]) and return at
//! once; the writer drains everything queued, writes it, `fdatasync`s once (with
//! [`SyncMode::Always`]), then runs the completions in queue order. Truncate and purge
//! are ordered with the appends around them because they travel the same queue. After
//! a failed write or fsync the WAL is poisoned: every later operation fails with that
//! error (retrying an fsync is not safe).

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{ensure_dir, StorageError, StorageStats, SyncMode};
use recovery::recover;
use segment::open_for_append;
use writer::Writer;

/// Largest accepted `len` field (index + data); a bigger one is corruption.
pub const MAX_RECORD_LEN: u32 = 64 << 20;
/// Default size after which a new segment is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default step by which the last segment is extended with written zeros ahead of the
/// records (see [`WalOptions::preallocate_bytes`]).
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 4 << 20;
const HEADER: u64 = 8;
const MAX_BATCH_OPS: usize = 4096;
const SEG_PREFIX: &str = "wal-";
const SEG_SUFFIX: &str = ".log";

/// How a [`Wal`] writes.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Whether to fsync.
    pub sync: SyncMode,
    /// A segment that reached this size is closed and a new one started.
    pub segment_bytes: u64,
    /// When non-zero, the last segment is extended in steps of this many bytes by
    /// writing zeros ahead of the records (at most up to `segment_bytes`), so that most
    /// group commits overwrite allocated blocks of a file whose size does not change:
    /// their `fdatasync` then has no metadata to commit. 0: plain appends.
    pub preallocate_bytes: u64,
}

impl WalOptions {
    /// Default segment size with the given sync mode.
    pub fn new(sync: SyncMode) -> WalOptions {
        WalOptions {
            sync,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        }
    }
}

/// One log record: an index and opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// The log index.
    pub index: u64,
    /// The payload.
    pub data: Vec<u8>,
}

/// Called on the writer thread once an operation is done (for appends and flushes: once
/// it is durable). Must be quick and must not block on the WAL itself.
pub type Completion = Box<dyn FnOnce(Result<(), StorageError>) + Send + 'static>;

pub(super) enum Op {
    Append {
        records: Vec<WalRecord>,
        done: Completion,
    },
    Truncate {
        from: u64,
        done: Completion,
    },
    Purge {
        upto: u64,
        done: Completion,
    },
    Flush {
        done: Completion,
    },
}

impl Op {
    pub(super) fn fail(self, e: StorageError) {
        match self {
            Op::Append { done, .. }
            | Op::Truncate { done, .. }
            | Op::Purge { done, .. }
            | Op::Flush { done } => done(Err(e)),
        }
    }
}

/// Handle to an open WAL; dropping it lets the writer finish what is queued and stop.
pub struct Wal {
    dir: PathBuf,
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
    /// Inside a simulation there is no writer thread (its timing would not be
    /// deterministic): each operation is written, fsynced and completed in the caller.
    inline: Option<parking_lot::Mutex<Writer>>,
    stats: Arc<StorageStats>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

impl Wal {
    /// Opens (creating) the WAL in `dir`, recovers it, and starts its writer thread.
    /// Returns the WAL and every record found, in index order.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Vec<WalRecord>), StorageError> {
        ensure_dir(dir)?;
        let (segments, records) = recover(dir, opts.sync)?;
        let (file, alloc) = match segments.last() {
            Some(seg) => {
                let (f, size) = open_for_append(&seg.path)?;
                (Some(f), size)
            }
            None => (None, 0),
        };
        let stats = Arc::new(StorageStats::new());
        let writer = Writer {
            dir: dir.to_path_buf(),
            opts,
            segments,
            file,
            alloc,
            buf: Vec::new(),
            dirty: false,
            pending: Vec::new(),
            failed: None,
            batch_records: 0,
            stats: stats.clone(),
        };
        if crate::sim::active() {
            return Ok((
                Wal {
                    dir: dir.to_path_buf(),
                    tx: None,
                    thread: None,
                    inline: Some(parking_lot::Mutex::new(writer)),
                    stats,
                },
                records,
            ));
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("zk-wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StorageError::io("spawn writer thread for", dir, e))?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                tx: Some(tx),
                thread: Some(thread),
                inline: None,
                stats,
            },
            records,
        ))
    }

    /// Decodes one segment's bytes (records `first`, `first + 1`, ...) exactly as
    /// [`Wal::open`] does, without touching the disk: the records of the intact prefix,
    /// or the error opening would give. A torn tail is cut as on open. For fuzzing and
    /// tests of the decoder: it must never panic, whatever the bytes.
    pub fn decode_segment(bytes: &[u8], first: u64) -> Result<Vec<WalRecord>, StorageError> {
        let mut out = Vec::new();
        let path = Path::new("<segment bytes>");
        recovery::parse_segment(bytes, first, path, &mut out)?;
        Ok(out)
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many group commits (one write + at most one fsync, then completions) happened.
    pub fn group_commits(&self) -> u64 {
        self.stats.group_commits()
    }

    /// The writer's counters (fsync latency, group commits, records and bytes written).
    pub fn stats(&self) -> &Arc<StorageStats> {
        &self.stats
    }

    /// Total size in bytes of the segment files in `dir` (a WAL directory).
    pub fn bytes_on_disk(dir: &Path) -> std::io::Result<u64> {
        super::stats::dir_bytes(dir, SEG_PREFIX, SEG_SUFFIX)
    }

    fn submit(&self, op: Op) {
        let gone = || StorageError::WriterGone {
            path: self.dir.clone(),
        };
        if let Some(writer) = &self.inline {
            let mut w = writer.lock();
            w.handle(op);
            w.commit();
            return;
        }
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(op)) = tx.send(op) {
                    op.fail(gone());
                }
            }
            None => op.fail(gone()),
        }
    }

    /// Queues records (indexes ascending, following the last one, or starting anywhere
    /// above it after a purge); `done` runs once they are durable.
    pub fn submit_append(&self, records: Vec<WalRecord>, done: Completion) {
        self.submit(Op::Append { records, done });
    }

    /// Queues removal of every record with index `>= from`.
    pub fn submit_truncate(&self, from: u64, done: Completion) {
        self.submit(Op::Truncate { from, done });
    }

    /// Queues removal of the segments whose records are all `<= upto` (the last segment
    /// is kept; the caller remembers what it purged and ignores older records on open).
    pub fn submit_purge(&self, upto: u64, done: Completion) {
        self.submit(Op::Purge { upto, done });
    }

    /// Queues a barrier: `done` runs, on the writer thread, once everything queued before
    /// it is durable (and before anything queued after it is done).
    pub fn submit_flush(&self, done: Completion) {
        self.submit(Op::Flush { done });
    }

    /// [`Wal::submit_append`] and wait.
    pub async fn append(&self, records: Vec<WalRecord>) -> Result<(), StorageError> {
        let (done, rx) = self.waiter();
        self.submit_append(records, done);
        self.wait(rx).await
    }

    /// [`Wal::submit_truncate`] and wait.
    pub async fn truncate(&self, from: u64) -> Result<(), StorageError> {
        let (done, rx) = self.waiter();
        self.submit_truncate(from, done);
        self.wait(rx).await
    }

    /// [`Wal::submit_purge`] and wait.
    pub async fn purge(&self, upto: u64) -> Result<(), StorageError> {
        let (done, rx) = self.waiter();
        self.submit_purge(upto, done);
        self.wait(rx).await
    }

    /// [`Wal::submit_flush`] and wait.
    pub async fn flush(&self) -> Result<(), StorageError> {
        let (done, rx) = self.waiter();
        self.submit_flush(done);
        self.wait(rx).await
    }

    fn waiter(
        &self,
    ) -> (
        Completion,
        tokio::sync::oneshot::Receiver<Result<(), StorageError>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done: Completion = Box::new(move |r| {
            let _ = tx.send(r);
        });
        (done, rx)
    }

    async fn wait(
        &self,
        rx: tokio::sync::oneshot::Receiver<Result<(), StorageError>>,
    ) -> Result<(), StorageError> {
        rx.await.map_err(|_| StorageError::WriterGone {
            path: self.dir.clone(),
        })?
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.inline.take() {
            w.into_inner().commit();
        }
        if let Some(t) = self.thread.take() {
            // A completion that dropped the last handle runs on the writer itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

mod recovery;
mod segment;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod writer;
