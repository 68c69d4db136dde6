//! The record format and one segment file's bookkeeping.

use crate::storage::disk::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{WalRecord, HEADER, MAX_RECORD_LEN, SEG_PREFIX, SEG_SUFFIX};
use crate::storage::StorageError;

/// One segment file as the writer knows it.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) first: u64,
    pub(super) path: PathBuf,
    /// Byte offset of each record, record `i` having index `first + i`.
    pub(super) offsets: Vec<u64>,
    pub(super) len: u64,
}

impl Segment {
    pub(super) fn next_index(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }
}

pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{SEG_PREFIX}{first:020}{SEG_SUFFIX}"))
}

/// Opens a segment for positional writes (records go at its end of records, which may
/// lie before the end of the file: preallocated zeros). Returns the file and its size.
pub(super) fn open_for_append(path: &Path) -> Result<(File, u64), StorageError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))?;
    let size = f
        .file_len()
        .map_err(|e| StorageError::io("stat", path, e))?;
    Ok((f, size))
}

pub(super) fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

pub(super) fn encode_into(buf: &mut Vec<u8>, r: &WalRecord) -> Result<u64, StorageError> {
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
