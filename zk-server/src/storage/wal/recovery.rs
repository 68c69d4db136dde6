//! Reading the segments back on open: torn tail cut, any other damage an error.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::segment::{checksum, Segment};
use super::{WalRecord, HEADER, MAX_RECORD_LEN, SEG_PREFIX, SEG_SUFFIX};
use crate::storage::{StorageError, SyncMode};

/// Reads every segment, cutting a torn tail off the last one.
pub(super) fn recover(
    dir: &Path,
    sync: SyncMode,
) -> Result<(Vec<Segment>, Vec<WalRecord>), StorageError> {
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

pub(super) fn read_segment(
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
