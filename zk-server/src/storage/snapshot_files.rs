//! Snapshot files: `snapshot-<index>.snap` in one directory, written atomically
//! (`.tmp` + fsync + rename + fsync dir), checksummed, the newest two kept.
//!
//! File format: `b"ZKSNAP01"`, `meta_len: u32 LE`, `data_len: u64 LE`, `crc32: u32 LE`
//! over `meta_len ‖ data_len ‖ meta ‖ data`, then `meta`, then `data`. Both parts are
//! opaque bytes to this module (the raft layer puts its snapshot meta and the tree there).

use super::disk::{self as fs, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{ensure_dir, sync_dir, StorageError, SyncMode};

const MAGIC: &[u8; 8] = b"ZKSNAP01";
const HEADER: usize = 8 + 4 + 8 + 4;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";
/// How many snapshot files are kept.
pub const KEEP: usize = 2;

/// One snapshot read back from disk, checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The index in the file name (the last log index the snapshot covers).
    pub index: u64,
    /// The caller's metadata bytes.
    pub meta: Vec<u8>,
    /// The caller's data bytes.
    pub data: Vec<u8>,
    /// Where it was read from.
    pub path: PathBuf,
}

/// The snapshot directory of one node.
#[derive(Debug, Clone)]
pub struct SnapshotFiles {
    dir: PathBuf,
    sync: SyncMode,
}

impl SnapshotFiles {
    /// Opens (creating) `dir` and removes leftover `.tmp` files of interrupted writes.
    pub fn open(dir: &Path, sync: SyncMode) -> Result<SnapshotFiles, StorageError> {
        ensure_dir(dir)?;
        let rd = fs::read_dir(dir).map_err(|e| StorageError::io("read dir", dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| StorageError::io("read dir", dir, e))?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(PREFIX) && name.ends_with(".tmp") {
                let p = ent.path();
                tracing::warn!(path = %p.display(), "removing an unfinished snapshot file");
                fs::remove_file(&p).map_err(|e| StorageError::io("remove", &p, e))?;
            }
        }
        Ok(SnapshotFiles {
            dir: dir.to_path_buf(),
            sync,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total size in bytes of the snapshot files in `dir` (a snapshot directory).
    pub fn bytes_on_disk(dir: &Path) -> io::Result<u64> {
        super::stats::dir_bytes(dir, PREFIX, SUFFIX)
    }

    /// The path of the snapshot for `index`.
    pub fn path_for(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{index:020}{SUFFIX}"))
    }

    /// The snapshot files present, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>, StorageError> {
        let rd = fs::read_dir(&self.dir).map_err(|e| StorageError::io("read dir", &self.dir, e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| StorageError::io("read dir", &self.dir, e))?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if let Some(idx) = name
                .strip_prefix(PREFIX)
                .and_then(|s| s.strip_suffix(SUFFIX))
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((idx, ent.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes the snapshot for `index` atomically, then deletes all but the newest [`KEEP`].
    pub fn save(&self, index: u64, meta: &[u8], data: &[u8]) -> Result<PathBuf, StorageError> {
        let path = self.path_for(index);
        let tmp = path.with_extension("snap.tmp");
        let header = header(meta, data)?;

        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&header)?;
            f.write_all(meta)?;
            f.write_all(data)?;
            if self.sync.is_always() {
                f.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| StorageError::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| StorageError::io("rename", &tmp, e))?;

        let all = self.list()?;
        let excess = all.len().saturating_sub(KEEP);
        for (_, old) in all.into_iter().take(excess) {
            fs::remove_file(&old).map_err(|e| StorageError::io("remove", &old, e))?;
        }
        if self.sync.is_always() {
            sync_dir(&self.dir)?;
        }
        Ok(path)
    }

    /// The newest snapshot, or `None` if there is none. A damaged newest file is an error
    /// (an older one is not silently used instead).
    pub fn load_latest(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        match self.list()?.pop() {
            None => Ok(None),
            Some((index, path)) => read_file(index, &path).map(Some),
        }
    }

    /// The snapshot for `index`.
    pub fn load(&self, index: u64) -> Result<StoredSnapshot, StorageError> {
        read_file(index, &self.path_for(index))
    }

    /// A whole snapshot file's bytes for `meta` and `data`, as [`SnapshotFiles::save`]
    /// writes them (for tests and fuzzing).
    pub fn encode(meta: &[u8], data: &[u8]) -> Result<Vec<u8>, StorageError> {
        let mut out = header(meta, data)?;
        out.extend_from_slice(meta);
        out.extend_from_slice(data);
        Ok(out)
    }

    /// Decodes a snapshot file's bytes exactly as loading does, without touching the
    /// disk (for fuzzing and tests): the verified parts or the error loading would give.
    pub fn decode(index: u64, bytes: &[u8]) -> Result<StoredSnapshot, StorageError> {
        parse_file(index, Path::new("<snapshot bytes>"), bytes)
    }
}

/// The file header for `meta` and `data`: magic, lengths, checksum.
fn header(meta: &[u8], data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let meta_len = u32::try_from(meta.len()).map_err(|_| {
        StorageError::InvalidRequest(format!("snapshot meta of {} bytes", meta.len()))
    })?;
    let data_len = data.len() as u64;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&meta_len.to_le_bytes());
    header.extend_from_slice(&data_len.to_le_bytes());
    header.extend_from_slice(&checksum(meta_len, data_len, meta, data).to_le_bytes());
    Ok(header)
}

fn read_file(index: u64, path: &Path) -> Result<StoredSnapshot, StorageError> {
    let bytes = fs::read(path).map_err(|e| StorageError::io("read", path, e))?;
    parse_file(index, path, &bytes)
}

fn parse_file(index: u64, path: &Path, bytes: &[u8]) -> Result<StoredSnapshot, StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if bytes.len() < HEADER {
        return Err(corrupt(
            0,
            format!("file is {} bytes, shorter than its header", bytes.len()),
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt(0, "bad magic".into()));
    }
    let meta_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let mut dl = [0u8; 8];
    dl.copy_from_slice(&bytes[12..20]);
    let data_len = u64::from_le_bytes(dl);
    let crc = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    let body = (bytes.len() - HEADER) as u64;
    if u64::from(meta_len).checked_add(data_len) != Some(body) {
        return Err(corrupt(
            8,
            format!("lengths say {meta_len} + {data_len} bytes, file has {body} after the header"),
        ));
    }
    let meta = &bytes[HEADER..HEADER + meta_len as usize];
    let data = &bytes[HEADER + meta_len as usize..];
    if checksum(meta_len, data_len, meta, data) != crc {
        return Err(corrupt(20, "checksum mismatch".into()));
    }
    Ok(StoredSnapshot {
        index,
        meta: meta.to_vec(),
        data: data.to_vec(),
        path: path.to_path_buf(),
    })
}

fn checksum(meta_len: u32, data_len: u64, meta: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&meta_len.to_le_bytes());
    h.update(&data_len.to_le_bytes());
    h.update(meta);
    h.update(data);
    h.finalize()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_keep_newest_two() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotFiles::open(dir.path(), SyncMode::Always).unwrap();
        assert_eq!(s.load_latest().unwrap(), None);
        s.save(5, b"m5", b"data five").unwrap();
        let got = s.load_latest().unwrap().unwrap();
        assert_eq!(
            (got.index, &got.meta[..], &got.data[..]),
            (5, &b"m5"[..], &b"data five"[..])
        );
        s.save(9, b"m9", b"").unwrap();
        s.save(12, b"", b"twelve").unwrap();
        let idx: Vec<u64> = s.list().unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(idx, vec![9, 12]);
        let got = s.load_latest().unwrap().unwrap();
        assert_eq!(
            (got.index, &got.meta[..], &got.data[..]),
            (12, &b""[..], &b"twelve"[..])
        );
        assert_eq!(s.load(9).unwrap().meta, b"m9");
    }

    #[test]
    fn leftover_tmp_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("snapshot-00000000000000000003.snap.tmp"),
            b"half",
        )
        .unwrap();
        let s = SnapshotFiles::open(dir.path(), SyncMode::Never).unwrap();
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn corrupt_newest_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotFiles::open(dir.path(), SyncMode::Never).unwrap();
        s.save(3, b"meta", b"old").unwrap();
        let p = s.save(4, b"meta", b"some tree bytes").unwrap();
        let mut bytes = fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40;
        fs::write(&p, &bytes).unwrap();
        let err = s.load_latest().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("snapshot-00000000000000000004.snap"), "{msg}");
        assert!(msg.contains("checksum mismatch"), "{msg}");

        fs::write(&p, &bytes[..n - 1]).unwrap();
        let msg = s.load_latest().unwrap_err().to_string();
        assert!(msg.contains("lengths say"), "{msg}");
    }
}
