//! The single writer thread: drains the queue, writes, fsyncs once, completes in order.

use crate::storage::disk::{self as fs, File, OpenOptions};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::segment::{encode_into, open_for_append, segment_path, Segment};
use super::{Completion, Op, WalOptions, WalRecord, MAX_BATCH_OPS};
use crate::storage::stats::FSYNC_WARN_THRESHOLD;
use crate::storage::{sync_dir, StorageError, StorageStats};

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) opts: WalOptions,
    pub(super) segments: Vec<Segment>,
    /// Open handle of the last segment.
    pub(super) file: Option<File>,
    /// Size of the last segment's file: its records end at `len` (written or buffered),
    /// zeros (preallocated) from there to here.
    pub(super) alloc: u64,
    /// Encoded records not yet written to `file`.
    pub(super) buf: Vec<u8>,
    /// `file` has writes not yet fsynced.
    pub(super) dirty: bool,
    /// Completions waiting for the next fsync, in queue order.
    pub(super) pending: Vec<Completion>,
    pub(super) failed: Option<StorageError>,
    /// Records written since the last group commit.
    pub(super) batch_records: u64,
    /// Counters for `/metrics` (relaxed atomics).
    pub(super) stats: Arc<StorageStats>,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Op>) {
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

    pub(super) fn handle(&mut self, op: Op) {
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
    pub(super) fn commit(&mut self) {
        if self.failed.is_none() {
            if let Err(e) = self.write_buf().and_then(|()| self.sync_file()) {
                self.poison(e);
            }
        }
        let records = std::mem::take(&mut self.batch_records);
        if self.pending.is_empty() {
            return;
        }
        self.stats.record_group_commit(records);
        tracing::trace!(batch = self.pending.len(), records, "wal group commit");
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
        let n = self.buf.len() as u64;
        let at = seg.len - n;
        if seg.len > self.alloc {
            let target = preallocation_target(seg.len, self.opts);
            if target > seg.len {
                write_zeros(f, seg.len.max(self.alloc), target)
                    .map_err(|e| StorageError::io("preallocate", &seg.path, e))?;
            }
            self.alloc = target.max(seg.len);
        }
        f.write_all_at(&self.buf, at)
            .map_err(|e| StorageError::io("write", &seg.path, e))?;
        self.stats.record_bytes_written(n);
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    fn sync_file(&mut self) -> Result<(), StorageError> {
        if self.dirty && self.opts.sync.is_always() {
            if let (Some(f), Some(seg)) = (self.file.as_ref(), self.segments.last()) {
                let start = Instant::now();
                f.sync_data()
                    .map_err(|e| StorageError::io("fdatasync", &seg.path, e))?;
                let took = start.elapsed();
                self.stats.record_fsync(took);
                if took > FSYNC_WARN_THRESHOLD {
                    tracing::warn!(
                        path = %seg.path.display(),
                        ms = took.as_millis() as u64,
                        "fsync of the write-ahead log is slow; expect high write latency"
                    );
                }
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
            self.batch_records += 1;
        }
        self.write_buf()
    }

    /// Closes the last segment (durably) and starts `wal-<first>.log`. An empty last
    /// segment is removed rather than left behind.
    fn roll(&mut self, first: u64) -> Result<(), StorageError> {
        self.write_buf()?;
        self.sync_file()?;
        // A closed segment ends with its last record: only the last may hold zeros.
        if let (Some(f), Some(seg)) = (self.file.as_ref(), self.segments.last()) {
            if self.alloc > seg.len && !seg.offsets.is_empty() {
                f.set_len(seg.len)
                    .map_err(|e| StorageError::io("truncate", &seg.path, e))?;
                if self.opts.sync.is_always() {
                    f.sync_data()
                        .map_err(|e| StorageError::io("fdatasync", &seg.path, e))?;
                }
            }
        }
        self.file = None;
        self.alloc = 0;
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
            .write(true)
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
            self.alloc = off;
        }
        if self.file.is_none() {
            let (f, size) = open_for_append(&seg.path)?;
            self.file = Some(f);
            self.alloc = size;
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

/// Where the preallocated zeros of a segment whose records end at `len` should end: the
/// next multiple of the step above `len`, but not past the segment size (0 when
/// preallocation is off).
fn preallocation_target(len: u64, opts: WalOptions) -> u64 {
    let step = opts.preallocate_bytes;
    if step == 0 {
        return 0;
    }
    (len / step + 1)
        .saturating_mul(step)
        .min(opts.segment_bytes.max(len))
}

/// Writes zeros into `f` over `[from, to)`: real blocks, so that later writes there
/// are overwrites with no allocation or size change to commit.
fn write_zeros(f: &File, from: u64, to: u64) -> std::io::Result<()> {
    const CHUNK: usize = 64 << 10;
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK as u64) as usize;
        f.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
