//! What the raft log keeps in memory: the newest entries, decoded, up to a byte budget,
//! and the leader of every unpurged index (one record per run of entries with the same
//! leader), so every log id is known without reading the disk. Older unpurged entries
//! live only in the WAL and are read back from it ([`read_from_wal`]) when openraft asks
//! for them (a follower catching up, an apply lagging far behind).
//!
//! Why: without a budget every entry since the last snapshot stayed decoded in memory:
//! with snapshots far apart (or a large `--snapshot-every`) that was as big as the tree.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use openraft::{CommittedLeaderId, Entry, LogId};

use super::{NodeId, TypeConfig};
use crate::storage::{StorageError, Wal, WalRecord};

/// Default budget of decoded entries kept in memory, counted in encoded bytes.
pub const DEFAULT_MEMORY_BUDGET: usize = 8 << 20;

/// The in-memory part of the log (see the module doc).
#[derive(Debug)]
pub(super) struct LogMemory {
    /// The newest entries, with their encoded sizes.
    recent: BTreeMap<u64, (Entry<TypeConfig>, usize)>,
    /// Sum of the encoded sizes in `recent`.
    recent_bytes: usize,
    /// `recent` is trimmed (oldest durable entries first) down to this many bytes.
    budget: usize,
    /// `(first index, leader)` of each run of entries with one leader, ascending; covers
    /// every index in `first..=last`.
    leaders: Vec<(u64, CommittedLeaderId<NodeId>)>,
    /// The first unpurged index.
    first: u64,
    /// The last index, if the log holds any unpurged entry.
    last: Option<u64>,
    /// Number of truncations so far: an append's "durable" report from before a
    /// truncation must not evict entries appended after it (not yet written).
    truncations: u64,
}

impl LogMemory {
    /// An empty log whose entries up to `purged` are gone.
    pub(super) fn new(purged: Option<LogId<NodeId>>, budget: usize) -> LogMemory {
        LogMemory {
            recent: BTreeMap::new(),
            recent_bytes: 0,
            budget,
            leaders: Vec::new(),
            first: purged.map_or(0, |p| p.index + 1),
            last: None,
            truncations: 0,
        }
    }

    /// Adds `entry` (encoded in `size` bytes) at the end, replacing any entry at or after
    /// its index.
    pub(super) fn push(&mut self, entry: Entry<TypeConfig>, size: usize) {
        let index = entry.log_id.index;
        if self.last.is_some_and(|l| index <= l) {
            self.truncate_from(index);
        }
        if self
            .leaders
            .last()
            .is_none_or(|(_, l)| *l != entry.log_id.leader_id)
        {
            self.leaders.push((index, entry.log_id.leader_id));
        }
        if self.last.is_none() {
            // Nothing below `index` is in the log (it may start after a snapshot).
            self.first = index;
        }
        self.last = Some(index);
        self.recent_bytes += size;
        self.recent.insert(index, (entry, size));
    }

    /// Adds the entry `log_id` at the end as one that is only on disk (in the WAL, not
    /// held decoded): for opening a log whose older entries need not be decoded. Only
    /// while nothing is held decoded (entries are held newest first, without holes).
    pub(super) fn push_on_disk(&mut self, log_id: LogId<NodeId>) {
        debug_assert!(self.recent.is_empty());
        let index = log_id.index;
        if self.last.is_some_and(|l| index <= l) {
            self.truncate_from(index);
        }
        if self
            .leaders
            .last()
            .is_none_or(|(_, l)| *l != log_id.leader_id)
        {
            self.leaders.push((index, log_id.leader_id));
        }
        if self.last.is_none() {
            self.first = index;
        }
        self.last = Some(index);
    }

    /// Number of truncations so far (pass it back to [`LogMemory::evict`]).
    pub(super) fn truncations(&self) -> u64 {
        self.truncations
    }

    /// Drops the oldest entries up to `durable` (written to the WAL, so they can be read
    /// back) while more than the budget is held; does nothing if the log was truncated
    /// since `truncations` was read (what was durable then may have been replaced).
    /// Returns the dropped entries, so the caller can free them after releasing its lock.
    pub(super) fn evict(&mut self, durable: u64, truncations: u64) -> Vec<Entry<TypeConfig>> {
        let mut evicted = Vec::new();
        if truncations != self.truncations {
            return evicted;
        }
        while self.recent_bytes > self.budget {
            let Some(entry) = self.recent.first_entry() else {
                break;
            };
            if *entry.key() > durable {
                break;
            }
            let (e, size) = entry.remove();
            self.recent_bytes -= size;
            evicted.push(e);
        }
        evicted
    }

    /// Removes the entries at and after `index`.
    pub(super) fn truncate_from(&mut self, index: u64) {
        self.truncations += 1;
        for (_, (_, size)) in self.recent.split_off(&index) {
            self.recent_bytes -= size;
        }
        self.leaders.retain(|(start, _)| *start < index);
        self.last = match self.last {
            Some(l) if index > self.first => Some(l.min(index - 1)),
            _ => None,
        };
    }

    /// Removes the entries up to and including `index`.
    pub(super) fn purge_upto(&mut self, index: u64) {
        let keep = self.recent.split_off(&(index + 1));
        for (_, size) in self.recent.values() {
            self.recent_bytes -= size;
        }
        self.recent = keep;
        let next = index + 1;
        // The run covering `next` becomes the first one and starts at `next`.
        let covering = self.leaders.partition_point(|(start, _)| *start <= next);
        if covering > 0 {
            self.leaders.drain(..covering - 1);
            if let Some(run) = self.leaders.first_mut() {
                run.0 = run.0.max(next);
            }
        }
        self.first = self.first.max(next);
        if self.last.is_some_and(|l| l < next) {
            self.last = None;
            self.leaders.clear();
        }
    }

    /// The id of the entry at `index`, if it is in the log (not purged).
    pub(super) fn log_id(&self, index: u64) -> Option<LogId<NodeId>> {
        let last = self.last?;
        if index < self.first || index > last {
            return None;
        }
        let run = self.leaders.partition_point(|(start, _)| *start <= index);
        let (_, leader) = self.leaders.get(run.checked_sub(1)?)?;
        Some(LogId::new(*leader, index))
    }

    /// The id of the last entry, if any is unpurged.
    pub(super) fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.last.and_then(|l| self.log_id(l))
    }

    /// The entries of `range` (clamped to the log): the part only on disk (to read with
    /// [`read_from_wal`]) and clones of the part in memory.
    pub(super) fn get(&self, range: Range<u64>) -> (Range<u64>, Vec<Entry<TypeConfig>>) {
        let Some(last) = self.last else {
            return (0..0, Vec::new());
        };
        let start = range.start.max(self.first);
        let end = range.end.min(last.saturating_add(1));
        if start >= end {
            return (0..0, Vec::new());
        }
        let in_memory_from = self
            .recent
            .keys()
            .next()
            .copied()
            .unwrap_or(end)
            .clamp(start, end);
        let disk = start..in_memory_from;
        let mem = self
            .recent
            .range(in_memory_from..end)
            .map(|(_, (e, _))| e.clone())
            .collect();
        (disk, mem)
    }

    /// Bytes (encoded) of the entries held decoded.
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        self.recent_bytes
    }

    /// Number of entries held decoded.
    #[cfg(test)]
    pub(super) fn held_entries(&self) -> usize {
        self.recent.len()
    }
}

/// The last WAL segment read back, decoded: readers go through the old log in order (an
/// apply replaying the log after a restart, a follower catching up), a few hundred
/// entries at a time, so each segment is read and checked once, not once per call.
/// Emptied when a read is served from memory again, and on truncate and purge.
pub(super) type SegmentCache = Arc<Mutex<CachedSegment>>;

/// See [`SegmentCache`].
#[derive(Debug, Default)]
pub(super) struct CachedSegment {
    /// Bumped once a truncation reached the WAL: a segment decoded before may hold
    /// replaced records, so it is neither used nor cached after.
    generation: u64,
    /// First index and records of the segment.
    segment: Option<(u64, Arc<Vec<WalRecord>>)>,
}

impl CachedSegment {
    /// Drops the cached segment.
    pub(super) fn clear(&mut self) {
        self.segment = None;
    }

    /// Drops the cached segment and refuses segments decoded before now.
    pub(super) fn truncated(&mut self) {
        self.generation += 1;
        self.segment = None;
    }
}

/// The records of the segment starting at `first`, from `cache` if it holds them all up
/// to `upto`, else read from `dir` (and cached).
fn segment_records(
    dir: &Path,
    first: u64,
    upto: u64,
    cache: &SegmentCache,
) -> Result<Arc<Vec<WalRecord>>, StorageError> {
    let generation = {
        let c = cache.lock();
        if let Some((f, records)) = c.segment.as_ref() {
            if *f == first && records.last().is_some_and(|r| r.index >= upto) {
                return Ok(records.clone());
            }
        }
        c.generation
    };
    let path = dir.join(format!("{SEG_PREFIX}{first:020}{SEG_SUFFIX}"));
    let bytes = std::fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
    let records = Arc::new(Wal::decode_segment(&bytes, first)?);
    let mut c = cache.lock();
    if c.generation == generation {
        c.segment = Some((first, records.clone()));
    }
    Ok(records)
}

/// Reads the entries `range` (all of them, or an error) back from the WAL segments in
/// `dir`. Only entries already written are read: the writer may be appending to the last
/// segment meanwhile, and a partly written record at its end is cut as on recovery.
pub(super) fn read_from_wal(
    dir: &Path,
    range: Range<u64>,
    cache: &SegmentCache,
) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
    let mut out = Vec::new();
    if range.is_empty() {
        return Ok(out);
    }
    let inconsistent = |reason: String| StorageError::Inconsistent {
        path: dir.to_path_buf(),
        reason,
    };
    let firsts = segment_firsts(dir)?;
    // The segments that may hold `range`: the last starting at or before its start, and
    // every later one starting before its end.
    let from = firsts
        .partition_point(|f| *f <= range.start)
        .saturating_sub(1);
    for (i, first) in firsts.iter().enumerate().skip(from) {
        if *first >= range.end {
            break;
        }
        if firsts.get(i + 1).is_some_and(|next| *next <= range.start) {
            continue;
        }
        let upto = firsts
            .get(i + 1)
            .map_or(range.end - 1, |next| (range.end - 1).min(next - 1));
        let records = segment_records(dir, *first, upto, cache)?;
        for r in records.iter() {
            if !range.contains(&r.index) {
                continue;
            }
            let entry: Entry<TypeConfig> = postcard::from_bytes(&r.data)
                .map_err(|e| inconsistent(format!("log entry {} does not decode: {e}", r.index)))?;
            out.push(entry);
        }
    }
    let complete = out.len() as u64 == range.end - range.start
        && out
            .iter()
            .zip(range.clone())
            .all(|(e, i)| e.log_id.index == i);
    if !complete {
        return Err(inconsistent(format!(
            "log entries {range:?} are not all in the WAL (found {})",
            out.len()
        )));
    }
    Ok(out)
}

/// The WAL's segment file names: `wal-<first index, 20 digits>.log` (see `storage::wal`).
const SEG_PREFIX: &str = "wal-";
const SEG_SUFFIX: &str = ".log";

/// The first indexes of the WAL segments in `dir`, ascending.
fn segment_firsts(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut firsts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        let name = entry.file_name();
        let first = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEG_PREFIX))
            .and_then(|n| n.strip_suffix(SEG_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tree::{Batch, Command};
    use openraft::EntryPayload;

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Batch(vec![Command::CloseSession {
                session: index as i64,
            }])),
        }
    }

    fn indexes(v: &[Entry<TypeConfig>]) -> Vec<u64> {
        v.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn evicts_oldest_durable_entries_beyond_the_budget() {
        let mut m = LogMemory::new(None, 30);
        for i in 1..=10 {
            m.push(entry(1, i), 10);
        }
        m.evict(4, 0);
        assert_eq!(m.held_entries(), 6, "only durable entries go");
        m.evict(10, 1);
        assert_eq!(m.held_entries(), 6, "a stale report evicts nothing");
        m.evict(10, 0);
        assert_eq!((m.held_entries(), m.held_bytes()), (3, 30));
        let (disk, mem) = m.get(0..100);
        assert_eq!(disk, 1..8);
        assert_eq!(indexes(&mem), vec![8, 9, 10]);
        let (disk, mem) = m.get(2..5);
        assert_eq!((disk, mem.len()), (2..5, 0));
        let (disk, mem) = m.get(9..10);
        assert_eq!((disk.is_empty(), indexes(&mem)), (true, vec![9]));
    }

    #[test]
    fn log_ids_survive_eviction_truncation_and_purge() {
        let mut m = LogMemory::new(None, 0);
        for i in 0..=3 {
            m.push(entry(1, i), 1);
        }
        for i in 4..=6 {
            m.push(entry(2, i), 1);
        }
        m.evict(6, m.truncations());
        assert_eq!(m.held_entries(), 0);
        assert_eq!(m.log_id(3), Some(entry(1, 3).log_id));
        assert_eq!(m.log_id(4), Some(entry(2, 4).log_id));
        assert_eq!(m.last_log_id(), Some(entry(2, 6).log_id));
        assert_eq!(m.log_id(7), None);

        m.truncate_from(4);
        assert_eq!(m.last_log_id(), Some(entry(1, 3).log_id));
        m.push(entry(3, 4), 1);
        m.push(entry(3, 5), 1);
        assert_eq!(m.log_id(4), Some(entry(3, 4).log_id));
        // Appending over an existing index truncates first.
        m.push(entry(4, 5), 1);
        assert_eq!(m.last_log_id(), Some(entry(4, 5).log_id));
        assert_eq!(m.log_id(4), Some(entry(3, 4).log_id));

        m.purge_upto(4);
        assert_eq!(m.log_id(4), None);
        assert_eq!(m.log_id(5), Some(entry(4, 5).log_id));
        assert_eq!(m.get(0..100).0, 5..5, "nothing below the first index");
        m.purge_upto(5);
        assert_eq!(m.last_log_id(), None);
        m.push(entry(5, 6), 1);
        assert_eq!(m.last_log_id(), Some(entry(5, 6).log_id));
        assert_eq!(m.log_id(5), None);
    }

    #[test]
    fn truncating_everything_empties_the_log() {
        let mut m = LogMemory::new(Some(entry(1, 2).log_id), 100);
        m.push(entry(1, 3), 5);
        m.push(entry(1, 4), 5);
        let before = m.truncations();
        m.truncate_from(3);
        assert_ne!(m.truncations(), before);
        assert_eq!((m.last_log_id(), m.held_bytes()), (None, 0));
        assert_eq!(m.get(0..10).1.len(), 0);
    }
}
