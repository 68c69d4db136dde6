//! Durable bytes that know nothing of znodes (nor of openraft): WAL segments, small
//! metadata files (vote, committed, purged), snapshot files.
//!
//! - [`wal`]: the segmented, checksummed write-ahead log with one group-commit writer.
//! - [`meta`]: small values replaced atomically (tmp + fsync + rename + fsync dir).
//! - [`snapshot_files`]: checksummed snapshot files, newest two kept.
//! - [`stats`]: fsync latency and group-commit counters for `/metrics`.

pub mod disk;
pub mod meta;
pub mod snapshot_files;
pub mod stats;
pub mod wal;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use meta::MetaFile;
pub use snapshot_files::{SnapshotFiles, StoredSnapshot};
pub use stats::StorageStats;
pub use wal::{Completion, Wal, WalOptions, WalRecord};

/// Whether writes are made durable with `fsync`/`fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every acknowledged write has been fsynced: the only safe mode for a real node.
    Always,
    /// Never fsync. UNSAFE: a power loss or kernel crash can lose acknowledged writes and
    /// break raft's safety. For tests and benchmarks of everything but the disk only.
    Never,
}

impl SyncMode {
    /// True when writes must be fsynced.
    pub fn is_always(self) -> bool {
        matches!(self, SyncMode::Always)
    }
}

/// An error of the durable storage layer, always naming the file involved.
///
/// Cloneable (sources are shared) so that one failed group commit can fail every
/// completion of its batch with the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Bytes on disk are not what was written: checksum mismatch, impossible length,
    /// wrong magic, out-of-order index. Never repaired silently.
    #[error("corrupt data in {path} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record or field inside the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checksummed payload did not decode (written by an incompatible version?).
    #[error("cannot decode {what} from {path} at byte offset {offset}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Byte offset of the payload.
        offset: u64,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A value could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: postcard::Error,
    },
    /// The recovered state is inconsistent (a hole in the log, an index that goes back).
    #[error("inconsistent storage in {path}: {reason}")]
    Inconsistent {
        /// The directory or file.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// A request the WAL refuses (e.g. an append that would leave a hole or go back).
    #[error("invalid WAL request: {0}")]
    InvalidRequest(String),
    /// The WAL writer thread has stopped (shut down, or panicked).
    #[error("the WAL writer of {path} has stopped")]
    WriterGone {
        /// The WAL directory.
        path: PathBuf,
    },
    /// A blocking storage task could not be joined.
    #[error("storage task failed: {0}")]
    Task(String),
}

impl StorageError {
    /// An [`StorageError::Io`] for `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// `fsync`s a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    disk::sync_dir(dir).map_err(|e| StorageError::io("fsync dir", dir, e))
}

/// Creates `dir` (and parents) if missing, durably: the parent of every directory it
/// creates is fsynced, or a crash soon after could lose the new directory's entry and
/// with it every file written below (found by the simulation's crash of every node).
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StorageError> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !disk::exists(a))
        .map(Path::to_path_buf)
        .collect();
    disk::create_dir_all(dir).map_err(|e| StorageError::io("create dir", dir, e))?;
    // Deepest first: each new entry is made durable in its (now existing) parent.
    for created in &missing {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent)?;
    }
    Ok(())
}
