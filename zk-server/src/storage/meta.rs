//! Small values (the raft vote, the last purged and the committed log id) each kept in
//! its own file and replaced atomically: write `<name>.tmp`, fsync it, rename it over
//! `<name>`, fsync the directory. A reader sees the old value or the new one, never a mix.
//!
//! File format: `b"ZKMETA01"`, `len: u32 LE`, `crc32: u32 LE` over `len ‖ payload`,
//! then `payload` (postcard).

use super::disk::{self as fs, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{sync_dir, StorageError, SyncMode};

const MAGIC: &[u8; 8] = b"ZKMETA01";
const HEADER: usize = 8 + 4 + 4;

/// One atomically replaced value of type `T` in `<dir>/<name>`.
#[derive(Debug, Clone)]
pub struct MetaFile<T> {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    _value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> MetaFile<T> {
    /// The file `<dir>/<name>` (nothing is read or created yet).
    pub fn new(dir: &Path, name: &str) -> MetaFile<T> {
        MetaFile {
            dir: dir.to_path_buf(),
            path: dir.join(name),
            tmp: dir.join(format!("{name}.tmp")),
            _value: PhantomData,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored value; `None` if the file does not exist. A damaged file is an error.
    pub fn load(&self) -> Result<Option<T>, StorageError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("read", &self.path, e)),
        };
        let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
            path: self.path.clone(),
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
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if bytes.len() != HEADER + len {
            return Err(corrupt(
                8,
                format!(
                    "length field says {len} payload bytes, file has {}",
                    bytes.len() - HEADER
                ),
            ));
        }
        let payload = &bytes[HEADER..];
        if checksum(len as u32, payload) != crc {
            return Err(corrupt(12, "checksum mismatch".into()));
        }
        postcard::from_bytes(payload)
            .map(Some)
            .map_err(|source| StorageError::Decode {
                what: "metadata value",
                path: self.path.clone(),
                offset: HEADER as u64,
                source,
            })
    }

    /// Replaces the stored value; with [`SyncMode::Always`] it is durable on return.
    pub fn store(&self, value: &T, sync: SyncMode) -> Result<(), StorageError> {
        let payload = postcard::to_allocvec(value).map_err(|source| StorageError::Encode {
            what: "metadata value",
            source,
        })?;
        let len = u32::try_from(payload.len()).map_err(|_| {
            StorageError::InvalidRequest(format!("metadata value of {} bytes", payload.len()))
        })?;
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&checksum(len, &payload).to_le_bytes());
        bytes.extend_from_slice(&payload);

        let mut f: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp)
            .map_err(|e| StorageError::io("create", &self.tmp, e))?;
        f.write_all(&bytes)
            .map_err(|e| StorageError::io("write", &self.tmp, e))?;
        if sync.is_always() {
            f.sync_all()
                .map_err(|e| StorageError::io("fsync", &self.tmp, e))?;
        }
        drop(f);
        fs::rename(&self.tmp, &self.path).map_err(|e| StorageError::io("rename", &self.tmp, e))?;
        if sync.is_always() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_none_then_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let m = MetaFile::<(u64, String)>::new(dir.path(), "vote");
        assert_eq!(m.load().unwrap(), None);
        m.store(&(7, "x".into()), SyncMode::Always).unwrap();
        assert_eq!(m.load().unwrap(), Some((7, "x".into())));
        m.store(&(8, "yy".into()), SyncMode::Always).unwrap();
        assert_eq!(m.load().unwrap(), Some((8, "yy".into())));
        assert!(!dir.path().join("vote.tmp").exists());
    }

    #[test]
    fn damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = MetaFile::<u64>::new(dir.path(), "committed");
        m.store(&12345, SyncMode::Never).unwrap();
        let mut bytes = fs::read(m.path()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(m.path(), &bytes).unwrap();
        let err = m.load().unwrap_err().to_string();
        assert!(
            err.contains("committed") && err.contains("checksum"),
            "{err}"
        );

        fs::write(m.path(), &bytes[..5]).unwrap();
        let err = m.load().unwrap_err().to_string();
        assert!(err.contains("shorter than its header"), "{err}");
    }
}
