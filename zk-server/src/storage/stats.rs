//! Counters of the durable storage for `/metrics` and `mntr`: fsync latency, group
//! commits, records and bytes written. The WAL writer thread updates them with relaxed
//! atomics (no lock on the write path); readers load them at any time.
//!
//! Sizes on disk are not counted here: [`dir_bytes`] sums them when asked.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the fsync latency histogram buckets, in microseconds (+Inf implicit).
pub const FSYNC_BUCKETS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// An fsync slower than this is logged and counted as `zk_fsync_threshold_exceed_count`
/// (ZooKeeper's `fsync.warningthresholdms` default).
pub const FSYNC_WARN_THRESHOLD: Duration = Duration::from_secs(1);

/// Storage counters of one node, shared as an `Arc` between the WAL writer and readers.
#[derive(Debug, Default)]
pub struct StorageStats {
    fsyncs: AtomicU64,
    fsync_sum_us: AtomicU64,
    fsync_max_us: AtomicU64,
    fsync_slow: AtomicU64,
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS_US.len() + 1],
    group_commits: AtomicU64,
    batches: AtomicU64,
    records: AtomicU64,
    max_batch: AtomicU64,
    bytes: AtomicU64,
}

/// A point-in-time copy of [`StorageStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageSnapshot {
    /// Log fsyncs (`fdatasync` of a WAL segment) done.
    pub fsyncs: u64,
    /// Their total duration, in microseconds.
    pub fsync_sum_us: u64,
    /// The slowest one, in microseconds.
    pub fsync_max_us: u64,
    /// How many took longer than [`FSYNC_WARN_THRESHOLD`].
    pub fsync_slow: u64,
    /// Per-bucket (not cumulative) counts, one per [`FSYNC_BUCKETS_US`] bound then +Inf.
    pub fsync_buckets: Vec<u64>,
    /// Group commits that completed at least one append or flush.
    pub group_commits: u64,
    /// Those of them that wrote log records (the others only ordered a flush).
    pub batches: u64,
    /// Log records written by group commits.
    pub records: u64,
    /// Most records written by one group commit.
    pub max_batch: u64,
    /// Bytes written to WAL segments (record headers included).
    pub bytes: u64,
}

impl StorageStats {
    /// Counters at zero.
    pub fn new() -> StorageStats {
        StorageStats::default()
    }

    /// One log fsync took `elapsed`.
    pub fn record_fsync(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.fsyncs.fetch_add(1, Relaxed);
        self.fsync_sum_us.fetch_add(us, Relaxed);
        self.fsync_max_us.fetch_max(us, Relaxed);
        if elapsed > FSYNC_WARN_THRESHOLD {
            self.fsync_slow.fetch_add(1, Relaxed);
        }
        let b = FSYNC_BUCKETS_US
            .iter()
            .position(|&ub| us <= ub)
            .unwrap_or(FSYNC_BUCKETS_US.len());
        if let Some(c) = self.fsync_buckets.get(b) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// One group commit made `records` log records durable (0: it only completed
    /// flushes).
    pub fn record_group_commit(&self, records: u64) {
        self.group_commits.fetch_add(1, Relaxed);
        if records > 0 {
            self.batches.fetch_add(1, Relaxed);
            self.records.fetch_add(records, Relaxed);
            self.max_batch.fetch_max(records, Relaxed);
        }
    }

    /// `n` bytes were written to a WAL segment.
    pub fn record_bytes_written(&self, n: u64) {
        self.bytes.fetch_add(n, Relaxed);
    }

    /// Group commits so far, including those that wrote no record.
    pub fn group_commits(&self) -> u64 {
        self.group_commits.load(Relaxed)
    }

    /// Fsyncs slower than [`FSYNC_WARN_THRESHOLD`] so far.
    pub fn fsync_threshold_exceeded(&self) -> u64 {
        self.fsync_slow.load(Relaxed)
    }

    /// The current values (each loaded on its own: not one atomic cut).
    pub fn snapshot(&self) -> StorageSnapshot {
        StorageSnapshot {
            fsyncs: self.fsyncs.load(Relaxed),
            fsync_sum_us: self.fsync_sum_us.load(Relaxed),
            fsync_max_us: self.fsync_max_us.load(Relaxed),
            fsync_slow: self.fsync_slow.load(Relaxed),
            fsync_buckets: self.fsync_buckets.iter().map(|b| b.load(Relaxed)).collect(),
            group_commits: self.group_commits.load(Relaxed),
            batches: self.batches.load(Relaxed),
            records: self.records.load(Relaxed),
            max_batch: self.max_batch.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }

    /// The counters in Prometheus text format: `zk_fsync_latency_seconds` (histogram),
    /// `zk_fsync_latency_max_seconds`, `zk_fsync_threshold_exceed_total`,
    /// `zk_group_commits_total`, `zk_group_commit_records_total`,
    /// `zk_group_commit_max_records`, `zk_wal_bytes_written_total`.
    pub fn write_prometheus(&self, out: &mut String) {
        let s = self.snapshot();
        out.push_str("# HELP zk_fsync_latency_seconds Duration of each fdatasync of the write-ahead log (one per group commit).\n");
        out.push_str("# TYPE zk_fsync_latency_seconds histogram\n");
        let mut cumulative = 0;
        for (ub, n) in FSYNC_BUCKETS_US.iter().zip(&s.fsync_buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "zk_fsync_latency_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *ub as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "zk_fsync_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            s.fsyncs
        );
        let _ = writeln!(
            out,
            "zk_fsync_latency_seconds_sum {}",
            s.fsync_sum_us as f64 / 1e6
        );
        let _ = writeln!(out, "zk_fsync_latency_seconds_count {}", s.fsyncs);
        let mut metric = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        metric(
            "zk_fsync_latency_max_seconds",
            "gauge",
            "Slowest fdatasync of the write-ahead log since start.",
            (s.fsync_max_us as f64 / 1e6).to_string(),
        );
        metric(
            "zk_fsync_threshold_exceed_total",
            "counter",
            "Write-ahead log fsyncs slower than 1 s.",
            s.fsync_slow.to_string(),
        );
        metric(
            "zk_group_commits_total",
            "counter",
            "WAL group commits that wrote log records (one write and at most one fsync per batch).",
            s.batches.to_string(),
        );
        metric(
            "zk_group_commit_records_total",
            "counter",
            "Log records made durable by group commits (divide by zk_group_commits_total for the mean batch).",
            s.records.to_string(),
        );
        metric(
            "zk_group_commit_max_records",
            "gauge",
            "Most log records written by one group commit since start.",
            s.max_batch.to_string(),
        );
        metric(
            "zk_wal_bytes_written_total",
            "counter",
            "Bytes written to write-ahead log segments.",
            s.bytes.to_string(),
        );
    }
}

/// Total size of the files in `dir` whose names start with `prefix` and end with
/// `suffix` (0 if `dir` does not exist).
pub fn dir_bytes(dir: &Path, prefix: &str, suffix: &str) -> io::Result<u64> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0;
    for ent in rd {
        let ent = ent?;
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(suffix)) {
            continue;
        }
        match ent.metadata() {
            Ok(m) if m.is_file() => total += m.len(),
            Ok(_) => {}
            // Removed (purged, replaced) between listing and stat.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_histogram_and_commits() {
        let s = StorageStats::new();
        s.record_fsync(Duration::from_micros(40));
        s.record_fsync(Duration::from_micros(300));
        s.record_fsync(Duration::from_secs(2));
        s.record_group_commit(3);
        s.record_group_commit(0);
        s.record_group_commit(5);
        s.record_bytes_written(100);
        let snap = s.snapshot();
        assert_eq!(snap.fsyncs, 3);
        assert_eq!(snap.fsync_sum_us, 2_000_340);
        assert_eq!(snap.fsync_max_us, 2_000_000);
        assert_eq!(snap.fsync_slow, 1);
        assert_eq!(snap.fsync_buckets.len(), FSYNC_BUCKETS_US.len() + 1);
        assert_eq!(snap.fsync_buckets[0], 1, "40us <= 50us");
        assert_eq!(snap.fsync_buckets[3], 1, "300us <= 500us");
        assert_eq!(snap.fsync_buckets[FSYNC_BUCKETS_US.len()], 1, "2s in +Inf");
        assert_eq!((snap.group_commits, snap.batches), (3, 2));
        assert_eq!((snap.records, snap.max_batch, snap.bytes), (8, 5, 100));
        assert_eq!(s.group_commits(), 3);

        let mut out = String::new();
        s.write_prometheus(&mut out);
        assert!(
            out.contains("zk_fsync_latency_seconds_bucket{le=\"0.00005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("zk_fsync_latency_seconds_bucket{le=\"0.0005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("zk_fsync_latency_seconds_bucket{le=\"1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("zk_fsync_latency_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("zk_fsync_latency_seconds_count 3\n"), "{out}");
        assert!(
            out.contains("zk_fsync_latency_seconds_sum 2.00034\n"),
            "{out}"
        );
        assert!(out.contains("zk_fsync_latency_max_seconds 2\n"), "{out}");
        assert!(out.contains("zk_fsync_threshold_exceed_total 1\n"), "{out}");
        assert!(out.contains("zk_group_commits_total 2\n"), "{out}");
        assert!(out.contains("zk_group_commit_records_total 8\n"), "{out}");
        assert!(out.contains("zk_group_commit_max_records 5\n"), "{out}");
        assert!(out.contains("zk_wal_bytes_written_total 100\n"), "{out}");
        assert!(out.contains("# TYPE zk_fsync_latency_seconds histogram\n"));
    }

    #[test]
    fn dir_bytes_sums_matching_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("wal-1.log"), [0u8; 10]).expect("write");
        fs::write(dir.path().join("wal-2.log"), [0u8; 5]).expect("write");
        fs::write(dir.path().join("vote.meta"), [0u8; 7]).expect("write");
        fs::create_dir(dir.path().join("wal-dir.log")).expect("mkdir");
        assert_eq!(dir_bytes(dir.path(), "wal-", ".log").expect("sum"), 15);
        assert_eq!(
            dir_bytes(&dir.path().join("missing"), "wal-", ".log").expect("sum"),
            0
        );
    }
}
