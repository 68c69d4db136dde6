//! WAL tests: reopen, truncate, purge, segment roll, torn tails, corruption, group commit.

use super::segment::segment_path;
use super::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn rec(index: u64) -> WalRecord {
    WalRecord {
        index,
        data: format!("entry-{index}").into_bytes(),
    }
}

fn recs(range: std::ops::RangeInclusive<u64>) -> Vec<WalRecord> {
    range.map(rec).collect()
}

fn indexes(records: &[WalRecord]) -> Vec<u64> {
    records.iter().map(|r| r.index).collect()
}

fn open(dir: &Path, segment_bytes: u64) -> (Wal, Vec<WalRecord>) {
    Wal::open(
        dir,
        WalOptions {
            sync: SyncMode::Always,
            segment_bytes,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        },
    )
    .unwrap()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(SEG_PREFIX))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn append_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert!(got.is_empty());
    wal.append(recs(1..=3)).await.unwrap();
    wal.append(recs(4..=10)).await.unwrap();
    drop(wal);
    let (wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(got, recs(1..=10));
    wal.append(recs(11..=11)).await.unwrap();
    drop(wal);
    let (_wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(got, recs(1..=11));
}

#[tokio::test]
async fn rejects_going_back() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    wal.append(recs(1..=3)).await.unwrap();
    let err = wal.append(recs(2..=2)).await.unwrap_err();
    assert!(err.to_string().contains("already holds up to 3"), "{err}");
}

#[tokio::test]
async fn segments_roll_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 100);
    for i in 1..=20 {
        wal.append(vec![rec(i)]).await.unwrap();
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 4, "{files:?}");
    assert_eq!(files[0], "wal-00000000000000000001.log");
    drop(wal);
    let (wal, got) = open(dir.path(), 100);
    assert_eq!(got, recs(1..=20));
    wal.append(recs(21..=25)).await.unwrap();
    drop(wal);
    let (_wal, got) = open(dir.path(), 100);
    assert_eq!(got, recs(1..=25));
}

#[tokio::test]
async fn truncate_within_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 100);
    for i in 1..=20 {
        wal.append(vec![rec(i)]).await.unwrap();
    }
    wal.truncate(15).await.unwrap();
    wal.truncate(30).await.unwrap(); // past the end: nothing
    wal.append(recs(15..=16)).await.unwrap();
    drop(wal);
    let (wal, got) = open(dir.path(), 100);
    assert_eq!(indexes(&got), (1..=16).collect::<Vec<_>>());
    assert_eq!(got[14], rec(15));

    wal.truncate(3).await.unwrap();
    drop(wal);
    let (wal, got) = open(dir.path(), 100);
    assert_eq!(got, recs(1..=2));

    wal.truncate(0).await.unwrap();
    drop(wal);
    let (wal, got) = open(dir.path(), 100);
    assert!(got.is_empty());
    assert!(segment_files(dir.path()).is_empty());
    wal.append(recs(0..=2)).await.unwrap();
    drop(wal);
    let (_wal, got) = open(dir.path(), 100);
    assert_eq!(got, recs(0..=2));
}

#[tokio::test]
async fn purge_drops_only_whole_segments_below() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 100);
    for i in 1..=20 {
        wal.append(vec![rec(i)]).await.unwrap();
    }
    let before = segment_files(dir.path());
    wal.purge(0).await.unwrap();
    assert_eq!(segment_files(dir.path()), before);

    wal.purge(10).await.unwrap();
    drop(wal);
    let (wal, got) = open(dir.path(), 100);
    let first = got[0].index;
    assert!(first > 1 && first <= 11, "first kept index {first}");
    assert_eq!(got.last().map(|r| r.index), Some(20));
    assert_eq!(indexes(&got), (first..=20).collect::<Vec<_>>());

    // Purge past the end keeps the last segment; a later append starts a new one.
    wal.purge(100).await.unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    wal.append(recs(101..=102)).await.unwrap();
    wal.purge(100).await.unwrap();
    assert_eq!(
        segment_files(dir.path()),
        vec!["wal-00000000000000000101.log".to_string()]
    );
    drop(wal);
    let (_wal, got) = open(dir.path(), 100);
    assert_eq!(got, recs(101..=102));
}

/// Writes records 1..=3 into one segment (plain appends: the file ends with the last
/// record) and returns its path and the record offsets.
async fn three_records(dir: &Path) -> (PathBuf, Vec<u64>, u64) {
    let plain_appends = WalOptions {
        sync: SyncMode::Always,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        preallocate_bytes: 0,
    };
    let (wal, _) = Wal::open(dir, plain_appends).unwrap();
    let mut offsets = vec![0];
    let mut pos = 0;
    for i in 1..=3 {
        wal.append(vec![rec(i)]).await.unwrap();
        pos += HEADER + 8 + rec(i).data.len() as u64;
        offsets.push(pos);
    }
    drop(wal);
    let path = segment_path(dir, 1);
    let len = fs::metadata(&path).unwrap().len();
    assert_eq!(len, pos);
    (path, offsets, len)
}

#[tokio::test]
async fn torn_tail_is_truncated_at_any_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets, len) = three_records(dir.path()).await;
    let original = fs::read(&path).unwrap();
    let last_start = offsets[2];
    // Cut inside the last record's header, right after it, and inside its payload.
    for cut in [
        last_start + 1,
        last_start + 7,
        last_start + 8,
        last_start + 12,
        len - 1,
    ] {
        fs::write(&path, &original[..cut as usize]).unwrap();
        let (wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(got, recs(1..=2), "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            last_start,
            "cut at {cut}"
        );
        // The log continues where the intact records end.
        wal.append(recs(3..=3)).await.unwrap();
        drop(wal);
        let (_wal, got) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(got, recs(1..=3), "cut at {cut}");
    }
}

#[tokio::test]
async fn flipped_bit_anywhere_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets, len) = three_records(dir.path()).await;
    let original = fs::read(&path).unwrap();
    // A payload byte of the middle record, and the very last byte of the last
    // (complete) record: both must be errors naming the file and the record offset.
    for (byte, record_start) in [(offsets[1] + 10, offsets[1]), (len - 1, offsets[2])] {
        let mut bytes = original.clone();
        bytes[byte as usize] ^= 0x04;
        fs::write(&path, &bytes).unwrap();
        let err = Wal::open(dir.path(), WalOptions::new(SyncMode::Never)).unwrap_err();
        match &err {
            StorageError::Corrupt {
                path: p, offset, ..
            } => {
                assert_eq!(p, &path);
                assert_eq!(*offset, record_start);
            }
            other => panic!("unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("wal-00000000000000000001.log"), "{msg}");
        assert!(msg.contains(&format!("offset {record_start}")), "{msg}");
        // Nothing was cut off.
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}

#[tokio::test]
async fn incomplete_record_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 60);
    for i in 1..=6 {
        wal.append(vec![rec(i)]).await.unwrap();
    }
    drop(wal);
    let first = segment_path(dir.path(), 1);
    let bytes = fs::read(&first).unwrap();
    fs::write(&first, &bytes[..bytes.len() - 3]).unwrap();
    let err = Wal::open(dir.path(), WalOptions::new(SyncMode::Never)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not the last") && msg.contains("wal-00000000000000000001.log"),
        "{msg}"
    );
}

#[test]
fn group_commit_completes_in_order_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    let order = Arc::new(Mutex::new(Vec::new()));

    // Hold the writer inside a completion until everything below is queued.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    wal.submit_flush(Box::new(move |r| {
        r.unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    }));
    held_rx.recv().unwrap();
    let before = wal.group_commits();

    for i in 1..=100u64 {
        let order = order.clone();
        wal.submit_append(
            vec![rec(i)],
            Box::new(move |r| {
                r.unwrap();
                order.lock().unwrap().push(i);
            }),
        );
    }
    let (done_tx, done_rx) = mpsc::channel();
    wal.submit_flush(Box::new(move |r| done_tx.send(r).unwrap()));
    release_tx.send(()).unwrap();
    done_rx.recv().unwrap().unwrap();

    assert_eq!(*order.lock().unwrap(), (1..=100).collect::<Vec<_>>());
    // The 100 appends and the flush were one write + one fsync.
    assert_eq!(wal.group_commits() - before, 1);
}

#[test]
fn completions_fail_after_the_writer_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    wal.tx = None;
    let (tx, rx) = mpsc::channel();
    wal.submit_append(recs(1..=1), Box::new(move |r| tx.send(r).unwrap()));
    let err = rx.recv().unwrap().unwrap_err();
    assert!(matches!(err, StorageError::WriterGone { .. }), "{err:?}");
}

#[test]
fn crafted_record_like_headers_end_in_a_refusal_not_a_long_scan() {
    // A valid record 1, then a "torn" record (its length runs past the end) whose bytes
    // are packed with fake headers of index 2, each claiming the rest of the file:
    // checksumming them all would be quadratic; the scan gives up and refuses instead.
    let mut bytes = Vec::new();
    super::segment::encode_into(&mut bytes, &rec(1)).unwrap();
    bytes.extend_from_slice(&60_000_000u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let n = 200_000usize;
    let total = bytes.len() + n * 16;
    for _ in 0..n {
        let q = bytes.len();
        let len = (total - q - 8) as u32;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&2u64.to_le_bytes());
    }
    assert_eq!(bytes.len(), total);
    let err = Wal::decode_segment(&bytes, 1).unwrap_err().to_string();
    assert!(err.contains("too many record-like headers"), "{err}");
}
