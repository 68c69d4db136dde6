//! Reading the segments back on open: torn tail cut, any other damage an error.

use crate::storage::disk::{self as fs, OpenOptions};
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

/// What [`parse_segment`] found in one segment's bytes.
#[derive(Debug)]
pub(super) struct Parsed {
    /// Byte offset of each intact record.
    pub(super) offsets: Vec<u64>,
    /// Where the intact records end.
    pub(super) end: u64,
    /// What was torn at `end`, if the bytes end inside a record.
    pub(super) torn: Option<&'static str>,
}

/// Parses one segment's bytes (records `first`, `first + 1`, ... from offset 0) into
/// `out`, without touching the disk. A torn tail is reported in [`Parsed::torn`] (the
/// caller decides whether that is allowed); any other damage is an error naming `path`
/// and the byte offset of the bad record.
///
/// A record that seems to run past the end of the bytes is only taken for a torn write
/// when nothing after its start checks out as an intact record: if its own bytes form
/// an intact record with a different length, or an intact record follows it, its
/// length field was damaged, and cutting there would silently lose intact records.
pub(super) fn parse_segment(
    bytes: &[u8],
    first: u64,
    path: &Path,
    out: &mut Vec<WalRecord>,
) -> Result<Parsed, StorageError> {
    let file_len = bytes.len() as u64;
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut offsets = Vec::new();
    let mut pos: u64 = 0;
    let mut torn: Option<&'static str> = None;
    while pos < file_len {
        let p = pos as usize;
        let rem = file_len - pos;
        let expected = first.saturating_add(offsets.len() as u64);
        if rem < HEADER {
            torn = Some("record header");
            break;
        }
        let len = u32::from_le_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]]);
        let crc = u32::from_le_bytes([bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]]);
        if len == 0 && bytes[p..].iter().all(|b| *b == 0) {
            // A zero-filled tail: the file was extended but the data never reached the
            // disk (a crash between the size update and the data write).
            torn = Some("zero-filled record");
            break;
        }
        if !(8..=MAX_RECORD_LEN).contains(&len) {
            return Err(corrupt(pos, format!("impossible record length {len}")));
        }
        if rem - HEADER < u64::from(len) {
            match intact_record_from(bytes, pos, expected) {
                Scan::Found(at) => {
                    return Err(corrupt(
                        pos,
                        format!(
                            "record length {len} runs past the end of the file, but an intact \
                             record (index >= {expected}) starts at byte offset {at}: the \
                             length field is damaged"
                        ),
                    ));
                }
                Scan::TooMuchWork => {
                    return Err(corrupt(
                        pos,
                        format!(
                            "record length {len} runs past the end of the file, and the bytes \
                             after it hold too many record-like headers to rule out intact \
                             records: refusing to cut them off"
                        ),
                    ));
                }
                Scan::NoneFound => {}
            }
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
    Ok(Parsed {
        offsets,
        end: pos,
        torn,
    })
}

/// Whether an intact record with an index at least `expected` starts in `bytes[from..]`:
/// either the record at `from` itself with its length taken as "the rest of the file"
/// (its length field damaged), or one starting later.
///
/// Checksumming candidates is bounded (a few times the file's size): bytes crafted to
/// hold many record-like headers (znode data is client-controlled) end the scan with
/// [`Scan::TooMuchWork`], a refusal, rather than a quadratic recovery.
fn intact_record_from(bytes: &[u8], from: u64, expected: u64) -> Scan {
    let mut budget = (bytes.len() as u64)
        .saturating_mul(4)
        .saturating_add(1 << 20);
    let mut record_at = |q: usize, len: u32| -> Option<bool> {
        let end = q + HEADER as usize + len as usize;
        if !(8..=MAX_RECORD_LEN).contains(&len) || end > bytes.len() {
            return Some(false);
        }
        let payload = &bytes[q + HEADER as usize..end];
        let mut ix = [0u8; 8];
        ix.copy_from_slice(&payload[..8]);
        let index = u64::from_le_bytes(ix);
        // Cheap filters first: a plausible index, then the checksum.
        if index < expected || index - expected > bytes.len() as u64 {
            return Some(false);
        }
        budget = budget.checked_sub(u64::from(len))?;
        let crc = u32::from_le_bytes([bytes[q + 4], bytes[q + 5], bytes[q + 6], bytes[q + 7]]);
        Some(checksum(len, payload) == crc)
    };
    let from = from as usize;
    let rest = bytes.len().saturating_sub(from + HEADER as usize);
    let mut candidates = (from..bytes.len().saturating_sub(HEADER as usize + 8)).map(|q| {
        let len = if q == from {
            u32::try_from(rest).unwrap_or(u32::MAX)
        } else {
            u32::from_le_bytes([bytes[q], bytes[q + 1], bytes[q + 2], bytes[q + 3]])
        };
        (q, len)
    });
    candidates
        .find_map(|(q, len)| match record_at(q, len) {
            Some(true) => Some(Scan::Found(q as u64)),
            None => Some(Scan::TooMuchWork),
            Some(false) => None,
        })
        .unwrap_or(Scan::NoneFound)
}

/// What [`intact_record_from`] found.
enum Scan {
    /// An intact record starts at this offset: the record before it is damaged.
    Found(u64),
    /// No intact record: the bytes are a torn write.
    NoneFound,
    /// Too many candidates to check: refuse rather than risk cutting intact records.
    TooMuchWork,
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
    let Parsed { offsets, end, torn } = parse_segment(&bytes, first, &path, out)?;
    if let Some(what) = torn {
        if !is_last {
            return Err(StorageError::Corrupt {
                path: path.clone(),
                offset: end,
                reason: format!("incomplete {what} at the end of a segment that is not the last"),
            });
        }
        tracing::warn!(
            path = %path.display(),
            offset = end,
            dropped_bytes = file_len - end,
            "WAL: torn {what} at the end of the log (an unfinished write); truncating it"
        );
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        f.set_len(end)
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
        len: end,
    })
}
