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
    /// Every byte from `end` on is zero: preallocated space (or, without preallocation,
    /// a file that grew but whose data never reached the disk). Not a torn write.
    pub(super) zero_tail: bool,
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
    let mut zero_tail = false;
    // One past the last non-zero byte: everything from here on is zero.
    let data_end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    while pos < file_len {
        let p = pos as usize;
        let rem = file_len - pos;
        let expected = first.saturating_add(offsets.len() as u64);
        if p >= data_end {
            // Only zeros from here: preallocated space past the last record, or a file
            // that was extended but whose data never reached the disk.
            zero_tail = true;
            break;
        }
        if rem < HEADER {
            torn = Some("record header");
            break;
        }
        if data_end as u64 <= pos + HEADER
            && (data_end as u64).div_ceil(SECTOR) * SECTOR < pos + HEADER
        {
            // Only the start of a header, then zeros from a sector boundary inside it:
            // a write torn inside preallocated space.
            torn = Some("record header (its last sector still zero)");
            break;
        }
        let len = u32::from_le_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]]);
        let crc = u32::from_le_bytes([bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]]);
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
            let claimed_end = pos + HEADER + u64::from(len);
            if checks_out_ending_in_zeros(bytes, pos, claimed_end, data_end as u64, crc) {
                return Err(corrupt(
                    pos,
                    format!(
                        "record length {len} runs past the end of the file, but the record \
                         checks out with a shorter length: the length field is damaged"
                    ),
                ));
            }
            torn = Some("record payload");
            break;
        }
        let payload = &bytes[p + HEADER as usize..p + HEADER as usize + len as usize];
        if checksum(len, payload) != crc {
            let rec_end = pos + HEADER + u64::from(len);
            if !torn_into_zeros(bytes, pos, rec_end, data_end as u64, crc) {
                return Err(corrupt(pos, "checksum mismatch".into()));
            }
            // A length made longer can swallow intact records after this one.
            match intact_record_from(bytes, pos, expected) {
                Scan::NoneFound => {}
                Scan::Found(at) => {
                    return Err(corrupt(
                        pos,
                        format!(
                            "checksum mismatch, and an intact record (index >= {expected}) \
                             starts at byte offset {at}: not a torn write"
                        ),
                    ));
                }
                Scan::TooMuchWork => {
                    return Err(corrupt(
                        pos,
                        "checksum mismatch, and too many record-like headers follow to \
                         rule out intact records: refusing to cut them off"
                            .into(),
                    ));
                }
            }
            torn = Some("record (its last sectors still zero)");
            break;
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
        zero_tail,
    })
}

/// Whether a record at `pos` whose checksum fails is a write torn inside preallocated
/// (zero-filled) space rather than damage: a crash before the fsync left its last
/// sectors unwritten, so they still read as zeros.
///
/// That needs the zeros to run from a sector boundary inside the record to the end of
/// the file (sectors are written whole; anything non-zero after the record means a
/// later write reached the disk, so this one is not simply unfinished), and the record
/// must not check out with any shorter length ending in the zeros (which would mean
/// its length field is damaged). Residual limit: an intact record whose own data ends
/// in zeros across a sector boundary, then damaged in its non-zero part, passes for a
/// torn write.
fn torn_into_zeros(bytes: &[u8], pos: u64, rec_end: u64, data_end: u64, crc: u32) -> bool {
    let sector_after_data = data_end.div_ceil(SECTOR) * SECTOR;
    if data_end <= pos || sector_after_data >= rec_end || rec_end > bytes.len() as u64 {
        return false;
    }
    !checks_out_ending_in_zeros(bytes, pos, rec_end, data_end, crc)
}

/// Whether the record at `pos` checks out (its stored `crc`) with a length that ends it
/// in the zeros from `data_end` on, before `claimed_end`: then its length field is
/// damaged and the record intact. Candidate ends: from `data_end` on, a bounded number
/// of zeros (the CRC of the zero-extended payload grows one byte at a time).
fn checks_out_ending_in_zeros(
    bytes: &[u8],
    pos: u64,
    claimed_end: u64,
    data_end: u64,
    crc: u32,
) -> bool {
    let rec_end = claimed_end.min(bytes.len() as u64 + 1);
    let start = pos + HEADER;
    let mut end = data_end.max(start);
    let mut payload = crc32fast::Hasher::new();
    payload.update(&bytes[start as usize..end as usize]);
    let last = rec_end.min(end + MAX_LENGTH_PROBE);
    while end < last {
        if let Ok(len) = u32::try_from(end - start) {
            if len >= 8 {
                let mut h = crc32fast::Hasher::new();
                h.update(&len.to_le_bytes());
                h.combine(&payload);
                if h.finalize() == crc {
                    return true;
                }
            }
        }
        payload.update(&[0]);
        end += 1;
    }
    false
}

/// Sector size assumed for torn writes: a crash leaves each sector old or new, whole.
const SECTOR: u64 = 512;
/// How many trailing zeros of a damaged-length record [`torn_into_zeros`] tries.
const MAX_LENGTH_PROBE: u64 = 4096;

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
    let Parsed {
        offsets,
        end,
        torn,
        zero_tail,
    } = parse_segment(&bytes, first, &path, out)?;
    if zero_tail && !is_last {
        return Err(StorageError::Corrupt {
            path: path.clone(),
            offset: end,
            reason: "zero-filled tail at the end of a segment that is not the last".into(),
        });
    }
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
