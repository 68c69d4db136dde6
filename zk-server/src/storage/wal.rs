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
//! # Recovery ([`Wal::open`])
//! - A torn tail — the last record of the last segment whose header or payload runs past
//!   the end of the file — is what a crash during an unsynced write leaves: it is cut off,
//!   with a warning. It was never acknowledged.
//! - Anything else that does not check out (a checksum mismatch, an impossible length, an
//!   index out of sequence, an incomplete record in a segment that is not the last) is an
//!   error naming the file and byte offset: data is never dropped silently.
//! - Limit: a length field damaged so that its record seems to run past the end of the
//!   last segment is indistinguishable from a torn write (the length is not checksummed on
//!   its own); lengths above [`MAX_RECORD_LEN`] are always errors.
//!
//! # Writing
//! One thread owns the files. Callers queue operations ([`Wal::submit_append`],
//! [`Wal::submit_truncate`], [`Wal::submit_purge`], [`Wal::submit_flush`]) and return at
//! once; the writer drains everything queued, writes it, `fdatasync`s once (with
//! [`SyncMode::Always`]), then runs the completions in queue order. Truncate and purge
//! are ordered with the appends around them because they travel the same queue. After
//! a failed write or fsync the WAL is poisoned: every later operation fails with that
//! error (retrying an fsync is not safe).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{ensure_dir, sync_dir, StorageError, SyncMode};

/// Largest accepted `len` field (index + data); a bigger one is corruption.
pub const MAX_RECORD_LEN: u32 = 64 << 20;
/// Default size after which a new segment is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
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
}

impl WalOptions {
    /// Default segment size with the given sync mode.
    pub fn new(sync: SyncMode) -> WalOptions {
        WalOptions {
            sync,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
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

enum Op {
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
    fn fail(self, e: StorageError) {
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
    group_commits: Arc<AtomicU64>,
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
        let file = match segments.last() {
            Some(seg) => Some(open_for_append(&seg.path)?),
            None => None,
        };
        let group_commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            dir: dir.to_path_buf(),
            opts,
            segments,
            file,
            buf: Vec::new(),
            dirty: false,
            pending: Vec::new(),
            failed: None,
            group_commits: group_commits.clone(),
        };
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
                group_commits,
            },
            records,
        ))
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many group commits (one write + at most one fsync, then completions) happened.
    pub fn group_commits(&self) -> u64 {
        self.group_commits.load(Ordering::Relaxed)
    }

    fn submit(&self, op: Op) {
        let gone = || StorageError::WriterGone {
            path: self.dir.clone(),
        };
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
        if let Some(t) = self.thread.take() {
            // A completion that dropped the last handle runs on the writer itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// One segment file as the writer knows it.
#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    /// Byte offset of each record, record `i` having index `first + i`.
    offsets: Vec<u64>,
    len: u64,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{SEG_PREFIX}{first:020}{SEG_SUFFIX}"))
}

fn open_for_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))
}

fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn encode_into(buf: &mut Vec<u8>, r: &WalRecord) -> Result<u64, StorageError> {
    let len = u32::try_from(8 + r.data.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD_LEN)
        .ok_or_else(|| {
            StorageError::InvalidRequest(format!(
                "record {} has {} bytes, more than {MAX_RECORD_LEN}",
                r.index,
                r.data.len()
            ))
        })?;
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&r.index.to_le_bytes());
    h.update(&r.data);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&h.finalize().to_le_bytes());
    buf.extend_from_slice(&r.index.to_le_bytes());
    buf.extend_from_slice(&r.data);
    Ok(HEADER + u64::from(len))
}

/// Reads every segment, cutting a torn tail off the last one.
fn recover(dir: &Path, sync: SyncMode) -> Result<(Vec<Segment>, Vec<WalRecord>), StorageError> {
    let mut found = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| StorageError::io("read dir", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io("read dir", dir, e))?;
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if let Some(first) = name
            .strip_prefix(SEG_PREFIX)
            .and_then(|s| s.strip_suffix(SEG_SUFFIX))
            .and_then(|s| s.parse::<u64>().ok())
        {
            found.push((first, ent.path()));
        }
    }
    found.sort();

    let mut segments: Vec<Segment> = Vec::with_capacity(found.len());
    let mut records = Vec::new();
    let n = found.len();
    for (i, (first, path)) in found.into_iter().enumerate() {
        if let Some(prev) = segments.last() {
            if first < prev.next_index() {
                return Err(StorageError::Inconsistent {
                    path: path.clone(),
                    reason: format!(
                        "segment starts at index {first} but {} already reaches {}",
                        prev.path.display(),
                        prev.next_index() - 1
                    ),
                });
            }
        }
        let seg = read_segment(first, path, i + 1 == n, sync, &mut records)?;
        segments.push(seg);
    }
    Ok((segments, records))
}

fn read_segment(
    first: u64,
    path: PathBuf,
    is_last: bool,
    sync: SyncMode,
    out: &mut Vec<WalRecord>,
) -> Result<Segment, StorageError> {
    let bytes = fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
    let file_len = bytes.len() as u64;
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };
    let mut offsets = Vec::new();
    let mut pos: u64 = 0;
    let mut torn: Option<&'static str> = None;
    while pos < file_len {
        let p = pos as usize;
        let rem = file_len - pos;
        if rem < HEADER {
            torn = Some("record header");
            break;
        }
        let len = u32::from_le_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]]);
        let crc = u32::from_le_bytes([bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]]);
        if !(8..=MAX_RECORD_LEN).contains(&len) {
            return Err(corrupt(pos, format!("impossible record length {len}")));
        }
        if rem - HEADER < u64::from(len) {
            torn = Some("record payload");
            break;
        }
        let payload = &bytes[p + HEADER as usize..p + HEADER as usize + len as usize];
        if checksum(len, payload) != crc {
            return Err(corrupt(pos, "checksum mismatch".into()));
        }
        let mut ix = [0u8; 8];
        ix.copy_from_slice(&payload[..8]);
        let index = u64::from_le_bytes(ix);
        let expected = first + offsets.len() as u64;
        if index != expected {
            return Err(corrupt(
                pos,
                format!("record has index {index}, expected {expected}"),
            ));
        }
        out.push(WalRecord {
            index,
            data: payload[8..].to_vec(),
        });
        offsets.push(pos);
        pos += HEADER + u64::from(len);
    }
    if let Some(what) = torn {
        if !is_last {
            return Err(corrupt(
                pos,
                format!("incomplete {what} at the end of a segment that is not the last"),
            ));
        }
        tracing::warn!(
            path = %path.display(),
            offset = pos,
            dropped_bytes = file_len - pos,
            "WAL: torn {what} at the end of the log (an unfinished write); truncating it"
        );
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        f.set_len(pos)
            .map_err(|e| StorageError::io("truncate", &path, e))?;
        if sync.is_always() {
            f.sync_all()
                .map_err(|e| StorageError::io("fsync", &path, e))?;
        }
    }
    Ok(Segment {
        first,
        path,
        offsets,
        len: pos,
    })
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    opts: WalOptions,
    segments: Vec<Segment>,
    /// Open handle of the last segment.
    file: Option<File>,
    /// Encoded records not yet written to `file`.
    buf: Vec<u8>,
    /// `file` has writes not yet fsynced.
    dirty: bool,
    /// Completions waiting for the next fsync, in queue order.
    pending: Vec<Completion>,
    failed: Option<StorageError>,
    group_commits: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            self.handle(first);
            let mut n = 1;
            while n < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(op) => self.handle(op),
                    Err(_) => break,
                }
                n += 1;
            }
            self.commit();
        }
        self.commit();
    }

    fn handle(&mut self, op: Op) {
        if let Some(e) = &self.failed {
            op.fail(e.clone());
            return;
        }
        match op {
            Op::Append { records, done } => match self.write_records(&records) {
                Ok(()) => self.pending.push(done),
                Err(e) => {
                    self.poison(e.clone());
                    done(Err(e));
                }
            },
            Op::Flush { done } => self.pending.push(done),
            Op::Truncate { from, done } => {
                self.commit();
                let r = self.guard(|w| w.truncate(from));
                done(r);
            }
            Op::Purge { upto, done } => {
                self.commit();
                let r = self.guard(|w| w.purge(upto));
                done(r);
            }
        }
    }

    /// Runs `f` unless poisoned; poisons on its error.
    fn guard(
        &mut self,
        f: impl FnOnce(&mut Writer) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        f(self).inspect_err(|e| self.poison(e.clone()))
    }

    fn poison(&mut self, e: StorageError) {
        tracing::error!(error = %e, "WAL write failed; the log refuses all further writes");
        self.failed = Some(e.clone());
        for c in self.pending.drain(..) {
            c(Err(e.clone()));
        }
    }

    /// Writes what is buffered, fsyncs once, completes everything pending in order.
    fn commit(&mut self) {
        if self.failed.is_none() {
            if let Err(e) = self.write_buf().and_then(|()| self.sync_file()) {
                self.poison(e);
            }
        }
        if self.pending.is_empty() {
            return;
        }
        self.group_commits.fetch_add(1, Ordering::Relaxed);
        for c in self.pending.drain(..) {
            c(Ok(()));
        }
    }

    fn write_buf(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (Some(f), Some(seg)) = (self.file.as_mut(), self.segments.last()) else {
            return Err(StorageError::InvalidRequest(
                "buffered WAL records without an open segment".into(),
            ));
        };
        f.write_all(&self.buf)
            .map_err(|e| StorageError::io("write", &seg.path, e))?;
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    fn sync_file(&mut self) -> Result<(), StorageError> {
        if self.dirty && self.opts.sync.is_always() {
            if let (Some(f), Some(seg)) = (self.file.as_ref(), self.segments.last()) {
                f.sync_data()
                    .map_err(|e| StorageError::io("fdatasync", &seg.path, e))?;
            }
        }
        self.dirty = false;
        Ok(())
    }

    fn write_records(&mut self, records: &[WalRecord]) -> Result<(), StorageError> {
        for r in records {
            let roll = match self.segments.last() {
                None => true,
                Some(seg) => {
                    let next = seg.next_index();
                    if !seg.offsets.is_empty() && r.index < next {
                        return Err(StorageError::InvalidRequest(format!(
                            "append of index {} but the log already holds up to {}",
                            r.index,
                            next - 1
                        )));
                    }
                    r.index != next || seg.len >= self.opts.segment_bytes
                }
            };
            if roll {
                self.roll(r.index)?;
            }
            let Some(seg) = self.segments.last_mut() else {
                return Err(StorageError::InvalidRequest("no segment after roll".into()));
            };
            let n = encode_into(&mut self.buf, r)?;
            seg.offsets.push(seg.len);
            seg.len += n;
        }
        self.write_buf()
    }

    /// Closes the last segment (durably) and starts `wal-<first>.log`. An empty last
    /// segment is removed rather than left behind.
    fn roll(&mut self, first: u64) -> Result<(), StorageError> {
        self.write_buf()?;
        self.sync_file()?;
        self.file = None;
        if let Some(seg) = self.segments.last() {
            if seg.offsets.is_empty() {
                fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))?;
                self.segments.pop();
            }
        }
        if let Some(seg) = self.segments.last() {
            if first < seg.next_index() {
                return Err(StorageError::InvalidRequest(format!(
                    "new segment at {first} below the log's next index {}",
                    seg.next_index()
                )));
            }
        }
        let path = segment_path(&self.dir, first);
        let f = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        if self.opts.sync.is_always() {
            sync_dir(&self.dir)?;
        }
        self.file = Some(f);
        self.segments.push(Segment {
            first,
            path,
            offsets: Vec::new(),
            len: 0,
        });
        Ok(())
    }

    fn truncate(&mut self, from: u64) -> Result<(), StorageError> {
        let mut removed = false;
        while let Some(seg) = self.segments.last() {
            if seg.first < from {
                break;
            }
            self.file = None;
            fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))?;
            self.segments.pop();
            removed = true;
        }
        if removed && self.opts.sync.is_always() {
            sync_dir(&self.dir)?;
        }
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        if from < seg.next_index() {
            let off = seg.offsets[(from - seg.first) as usize];
            let f = OpenOptions::new()
                .write(true)
                .open(&seg.path)
                .map_err(|e| StorageError::io("open", &seg.path, e))?;
            f.set_len(off)
                .map_err(|e| StorageError::io("truncate", &seg.path, e))?;
            if self.opts.sync.is_always() {
                f.sync_all()
                    .map_err(|e| StorageError::io("fsync", &seg.path, e))?;
            }
            seg.offsets.truncate((from - seg.first) as usize);
            seg.len = off;
        }
        if self.file.is_none() {
            self.file = Some(open_for_append(&seg.path)?);
        }
        Ok(())
    }

    fn purge(&mut self, upto: u64) -> Result<(), StorageError> {
        let mut removed = 0;
        while self.segments.len() > 1 {
            let seg = &self.segments[0];
            // Everything in it is <= upto: its successor starts at or below upto + 1.
            if self.segments[1].first > upto.saturating_add(1) {
                break;
            }
            fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))?;
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 && self.opts.sync.is_always() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn rec(index: u64) -> WalRecord {
        WalRecord {
            index,
            data: format!("entry-{index}").into_bytes(),
        }
    }

    fn recs(range: std::ops::RangeInclusive<u64>) -> Vec<WalRecord> {
        range.map(rec).collect()
    }

    fn indexes(records: &[WalRecord]) -> Vec<u64> {
        records.iter().map(|r| r.index).collect()
    }

    fn open(dir: &Path, segment_bytes: u64) -> (Wal, Vec<WalRecord>) {
        Wal::open(
            dir,
            WalOptions {
                sync: SyncMode::Always,
                segment_bytes,
            },
        )
        .unwrap()
    }

    fn segment_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(SEG_PREFIX))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn append_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert!(got.is_empty());
        wal.append(recs(1..=3)).await.unwrap();
        wal.append(recs(4..=10)).await.unwrap();
        drop(wal);
        let (wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(got, recs(1..=10));
        wal.append(recs(11..=11)).await.unwrap();
        drop(wal);
        let (_wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(got, recs(1..=11));
    }

    #[tokio::test]
    async fn rejects_going_back() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        wal.append(recs(1..=3)).await.unwrap();
        let err = wal.append(recs(2..=2)).await.unwrap_err();
        assert!(err.to_string().contains("already holds up to 3"), "{err}");
    }

    #[tokio::test]
    async fn segments_roll_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 100);
        for i in 1..=20 {
            wal.append(vec![rec(i)]).await.unwrap();
        }
        let files = segment_files(dir.path());
        assert!(files.len() >= 4, "{files:?}");
        assert_eq!(files[0], "wal-00000000000000000001.log");
        drop(wal);
        let (wal, got) = open(dir.path(), 100);
        assert_eq!(got, recs(1..=20));
        wal.append(recs(21..=25)).await.unwrap();
        drop(wal);
        let (_wal, got) = open(dir.path(), 100);
        assert_eq!(got, recs(1..=25));
    }

    #[tokio::test]
    async fn truncate_within_and_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 100);
        for i in 1..=20 {
            wal.append(vec![rec(i)]).await.unwrap();
        }
        wal.truncate(15).await.unwrap();
        wal.truncate(30).await.unwrap(); // past the end: nothing
        wal.append(recs(15..=16)).await.unwrap();
        drop(wal);
        let (wal, got) = open(dir.path(), 100);
        assert_eq!(indexes(&got), (1..=16).collect::<Vec<_>>());
        assert_eq!(got[14], rec(15));

        wal.truncate(3).await.unwrap();
        drop(wal);
        let (wal, got) = open(dir.path(), 100);
        assert_eq!(got, recs(1..=2));

        wal.truncate(0).await.unwrap();
        drop(wal);
        let (wal, got) = open(dir.path(), 100);
        assert!(got.is_empty());
        assert!(segment_files(dir.path()).is_empty());
        wal.append(recs(0..=2)).await.unwrap();
        drop(wal);
        let (_wal, got) = open(dir.path(), 100);
        assert_eq!(got, recs(0..=2));
    }

    #[tokio::test]
    async fn purge_drops_only_whole_segments_below() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 100);
        for i in 1..=20 {
            wal.append(vec![rec(i)]).await.unwrap();
        }
        let before = segment_files(dir.path());
        wal.purge(0).await.unwrap();
        assert_eq!(segment_files(dir.path()), before);

        wal.purge(10).await.unwrap();
        drop(wal);
        let (wal, got) = open(dir.path(), 100);
        let first = got[0].index;
        assert!(first > 1 && first <= 11, "first kept index {first}");
        assert_eq!(got.last().map(|r| r.index), Some(20));
        assert_eq!(indexes(&got), (first..=20).collect::<Vec<_>>());

        // Purge past the end keeps the last segment; a later append starts a new one.
        wal.purge(100).await.unwrap();
        assert_eq!(segment_files(dir.path()).len(), 1);
        wal.append(recs(101..=102)).await.unwrap();
        wal.purge(100).await.unwrap();
        assert_eq!(
            segment_files(dir.path()),
            vec!["wal-00000000000000000101.log".to_string()]
        );
        drop(wal);
        let (_wal, got) = open(dir.path(), 100);
        assert_eq!(got, recs(101..=102));
    }

    /// Writes records 1..=3 into one segment and returns its path and the record offsets.
    async fn three_records(dir: &Path) -> (PathBuf, Vec<u64>, u64) {
        let (wal, _) = open(dir, DEFAULT_SEGMENT_BYTES);
        let mut offsets = vec![0];
        let mut pos = 0;
        for i in 1..=3 {
            wal.append(vec![rec(i)]).await.unwrap();
            pos += HEADER + 8 + rec(i).data.len() as u64;
            offsets.push(pos);
        }
        drop(wal);
        let path = segment_path(dir, 1);
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(len, pos);
        (path, offsets, len)
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_at_any_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (path, offsets, len) = three_records(dir.path()).await;
        let original = fs::read(&path).unwrap();
        let last_start = offsets[2];
        // Cut inside the last record's header, right after it, and inside its payload.
        for cut in [
            last_start + 1,
            last_start + 7,
            last_start + 8,
            last_start + 12,
            len - 1,
        ] {
            fs::write(&path, &original[..cut as usize]).unwrap();
            let (wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
            assert_eq!(got, recs(1..=2), "cut at {cut}");
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                last_start,
                "cut at {cut}"
            );
            // The log continues where the intact records end.
            wal.append(recs(3..=3)).await.unwrap();
            drop(wal);
            let (_wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
            assert_eq!(got, recs(1..=3), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn flipped_bit_anywhere_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let (path, offsets, len) = three_records(dir.path()).await;
        let original = fs::read(&path).unwrap();
        // A payload byte of the middle record, and the very last byte of the last
        // (complete) record: both must be errors naming the file and the record offset.
        for (byte, record_start) in [(offsets[1] + 10, offsets[1]), (len - 1, offsets[2])] {
            let mut bytes = original.clone();
            bytes[byte as usize] ^= 0x04;
            fs::write(&path, &bytes).unwrap();
            let err = Wal::open(dir.path(), WalOptions::new(SyncMode::Never)).unwrap_err();
            match &err {
                StorageError::Corrupt {
                    path: p, offset, ..
                } => {
                    assert_eq!(p, &path);
                    assert_eq!(*offset, record_start);
                }
                other => panic!("unexpected error {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains("wal-00000000000000000001.log"), "{msg}");
            assert!(msg.contains(&format!("offset {record_start}")), "{msg}");
            // Nothing was cut off.
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }

    #[tokio::test]
    async fn incomplete_record_in_an_older_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 60);
        for i in 1..=6 {
            wal.append(vec![rec(i)]).await.unwrap();
        }
        drop(wal);
        let first = segment_path(dir.path(), 1);
        let bytes = fs::read(&first).unwrap();
        fs::write(&first, &bytes[..bytes.len() - 3]).unwrap();
        let err = Wal::open(dir.path(), WalOptions::new(SyncMode::Never)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("not the last") && msg.contains("wal-00000000000000000001.log"),
            "{msg}"
        );
    }

    #[test]
    fn group_commit_completes_in_order_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        let order = Arc::new(Mutex::new(Vec::new()));

        // Hold the writer inside a completion until everything below is queued.
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (held_tx, held_rx) = mpsc::channel::<()>();
        wal.submit_flush(Box::new(move |r| {
            r.unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        }));
        held_rx.recv().unwrap();
        let before = wal.group_commits();

        for i in 1..=100u64 {
            let order = order.clone();
            wal.submit_append(
                vec![rec(i)],
                Box::new(move |r| {
                    r.unwrap();
                    order.lock().unwrap().push(i);
                }),
            );
        }
        let (done_tx, done_rx) = mpsc::channel();
        wal.submit_flush(Box::new(move |r| done_tx.send(r).unwrap()));
        release_tx.send(()).unwrap();
        done_rx.recv().unwrap().unwrap();

        assert_eq!(*order.lock().unwrap(), (1..=100).collect::<Vec<_>>());
        // The 100 appends and the flush were one write + one fsync.
        assert_eq!(wal.group_commits() - before, 1);
    }

    #[test]
    fn completions_fail_after_the_writer_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        wal.tx = None;
        let (tx, rx) = mpsc::channel();
        wal.submit_append(recs(1..=1), Box::new(move |r| tx.send(r).unwrap()));
        let err = rx.recv().unwrap().unwrap_err();
        assert!(matches!(err, StorageError::WriterGone { .. }), "{err:?}");
    }
}
