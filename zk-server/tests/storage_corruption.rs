//! Crash consistency of the log and snapshots under damage: the log truncated at EVERY
//! byte of its last records, and seeded random bit flips in log records and snapshot
//! files. Each case must end in recovery of exactly the intact prefix (checked record
//! by record, and znode by znode on a real node) or in a refusal naming the file and the
//! byte offset — never a panic, never an intact record silently dropped.
//!
//! The byte-by-byte cases open the storage layer directly (fast); a real in-process node
//! (`TestServer`) restarts on a few damaged data directories to check the tree itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zk_client::{Client, CreateOptions};
use zk_server::storage::{SnapshotFiles, StorageError, SyncMode, Wal, WalOptions, WalRecord};
use zk_server::testing::TestServer;

/// A small deterministic RNG (xorshift64*): every case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Record `i`: distinct content and length, so a wrong record cannot pass for another.
fn rec(i: u64) -> WalRecord {
    let data = format!("record {i} {}", "#".repeat((i as usize * 7) % 23)).into_bytes();
    WalRecord { index: i, data }
}

/// Bytes record `i` takes on disk: 8-byte header, 8-byte index, data.
fn rec_len(i: u64) -> u64 {
    16 + rec(i).data.len() as u64
}

fn opts(segment_bytes: u64) -> WalOptions {
    WalOptions {
        sync: SyncMode::Never,
        segment_bytes,
        preallocate_bytes: 0,
    }
}

/// Copies the directory tree `from` into `to` (created if missing).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Writes records `1..=n`, one write each, into `dir`.
async fn write_log(dir: &Path, n: u64, segment_bytes: u64) {
    let (wal, got) = Wal::open(dir, opts(segment_bytes)).expect("open");
    assert!(got.is_empty());
    for i in 1..=n {
        wal.append(vec![rec(i)]).await.expect("append");
    }
}

/// Asserts `err` is a corruption error naming `path` and the record at `offset`.
fn assert_refusal(err: &StorageError, path: &Path, offset: u64, case: &str) {
    match err {
        StorageError::Corrupt {
            path: p, offset: o, ..
        } => {
            assert_eq!(p, path, "{case}: {err}");
            assert_eq!(*o, offset, "{case}: {err}");
        }
        other => panic!("{case}: expected a corruption error, got {other:?}"),
    }
    let msg = err.to_string();
    let name = path.file_name().expect("name").to_string_lossy();
    assert!(
        msg.contains(name.as_ref()) && msg.contains(&format!("offset {offset}")),
        "{case}: the message names file and offset: {msg}"
    );
}

#[tokio::test]
async fn log_cut_at_every_byte_of_its_last_records_recovers_the_intact_prefix() {
    const N: u64 = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), N, 64 << 20).await;
    let path = segments(dir.path()).pop().expect("a segment");
    let original = fs::read(&path).expect("read");
    // Record i starts at starts[i - 1]; starts[N] is the end of the file.
    let mut starts = vec![0u64];
    for i in 1..=N {
        starts.push(starts[starts.len() - 1] + rec_len(i));
    }
    assert_eq!(starts[N as usize], original.len() as u64);

    let from = starts[(N - 4) as usize]; // the last four records
    let mut cases = 0;
    for cut in from..=original.len() as u64 {
        fs::write(&path, &original[..cut as usize]).expect("cut");
        let case = format!("cut at byte {cut}");
        let (wal, got) = Wal::open(dir.path(), opts(64 << 20))
            .unwrap_or_else(|e| panic!("{case}: a torn tail must recover, got {e}"));
        // Exactly the records that lie wholly before the cut, byte for byte.
        let intact = starts.iter().filter(|s| **s <= cut).count() as u64 - 1;
        let want: Vec<WalRecord> = (1..=intact).map(rec).collect();
        assert_eq!(got, want, "{case}");
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            starts[intact as usize],
            "{case}: the torn bytes are cut off"
        );
        // The log continues right after the intact prefix.
        wal.append(vec![rec(intact + 1)]).await.expect("append");
        drop(wal);
        let (_wal, again) = Wal::open(dir.path(), opts(64 << 20)).expect("reopen");
        assert_eq!(again.len() as u64, intact + 1, "{case}");
        assert_eq!(again.last(), Some(&rec(intact + 1)), "{case}");
        cases += 1;
    }
    println!("log truncation: {cases} cut points, each recovered exactly the intact prefix");
}

/// Zeros after the last record (a file that grew but whose data never reached the
/// disk, or preallocated space): free space. Every record comes back, the zeros stay,
/// and the log continues over them.
#[tokio::test]
async fn zero_filled_tail_is_free_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 3, 64 << 20).await;
    let path = segments(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(&[0u8; 100]);
    fs::write(&path, &bytes).expect("write");
    let (wal, got) = Wal::open(dir.path(), opts(64 << 20)).expect("open");
    assert_eq!(got, (1..=3).map(rec).collect::<Vec<_>>());
    assert_eq!(fs::metadata(&path).expect("meta").len(), bytes.len() as u64);
    wal.append(vec![rec(4)]).await.expect("append");
    drop(wal);
    let (_wal, got) = Wal::open(dir.path(), opts(64 << 20)).expect("reopen");
    assert_eq!(got, (1..=4).map(rec).collect::<Vec<_>>());
}

/// A flipped bit must never lose an intact record: opening either refuses, naming the
/// file and the start of the damaged record, or (never, with a CRC) yields everything.
fn check_flip(dir: &Path, files: &[(PathBuf, Vec<u8>, Vec<u64>)], all: &[WalRecord], seed: u64) {
    let mut rng = Rng(seed | 1);
    let (path, original, starts) = &files[rng.below(files.len() as u64) as usize];
    let byte = rng.below(original.len() as u64);
    let bit = rng.below(8);
    let mut bytes = original.clone();
    bytes[byte as usize] ^= 1 << bit;
    fs::write(path, &bytes).expect("flip");
    let case = format!(
        "seed {seed}: bit {bit} of byte {byte} in {}",
        path.display()
    );
    match Wal::open(dir, opts(300)) {
        Ok((_wal, got)) => assert_eq!(got, all, "{case}: opened, so nothing may be missing"),
        Err(e) => {
            let record = starts.iter().rev().find(|s| **s <= byte).copied();
            assert_refusal(&e, path, record.unwrap_or(0), &case);
            assert_eq!(
                &fs::read(path).expect("read"),
                &bytes,
                "{case}: file untouched"
            );
        }
    }
    fs::write(path, original).expect("restore");
}

#[tokio::test]
async fn flipped_bits_in_log_records_refuse_to_start_naming_file_and_offset() {
    const N: u64 = 24;
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), N, 300).await; // several segments
    let all: Vec<WalRecord> = (1..=N).map(rec).collect();
    let mut files = Vec::new();
    let mut next = 1u64;
    for path in segments(dir.path()) {
        let bytes = fs::read(&path).expect("read");
        let mut starts = Vec::new();
        let mut pos = 0u64;
        while pos < bytes.len() as u64 {
            starts.push(pos);
            pos += rec_len(next);
            next += 1;
        }
        files.push((path, bytes, starts));
    }
    assert!(files.len() >= 3, "the log spans several segments");
    assert_eq!(next, N + 1);

    // Every bit of the last two records (the tail, where a damaged length could pass
    // for a torn write), then seeded random bits anywhere.
    let (last_path, last_bytes, last_starts) = files.last().expect("last").clone();
    let from = last_starts[last_starts.len().saturating_sub(2)];
    let mut cases = 0;
    for byte in from..last_bytes.len() as u64 {
        for bit in 0..8 {
            let mut bytes = last_bytes.clone();
            bytes[byte as usize] ^= 1 << bit;
            fs::write(&last_path, &bytes).expect("flip");
            let case = format!("bit {bit} of byte {byte} of the last segment");
            match Wal::open(dir.path(), opts(300)) {
                Ok((_wal, got)) => panic!("{case}: opened with {} records", got.len()),
                Err(e) => {
                    let record = last_starts.iter().rev().find(|s| **s <= byte).copied();
                    assert_refusal(&e, &last_path, record.unwrap_or(0), &case);
                }
            }
            cases += 1;
        }
    }
    fs::write(&last_path, &last_bytes).expect("restore");
    for seed in 1..=400u64 {
        check_flip(
            dir.path(),
            &files,
            &all,
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        cases += 1;
    }
    let (_wal, got) = Wal::open(dir.path(), opts(300)).expect("restored log opens");
    assert_eq!(got, all);
    println!("log bit flips: {cases} cases, each refused naming file and record offset");
}

#[test]
fn snapshot_bit_flips_and_cuts_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = SnapshotFiles::open(dir.path(), SyncMode::Never).expect("open");
    files.save(10, b"older meta", b"older tree").expect("save");
    let data: Vec<u8> = (0..200u32).map(|i| (i * 31 % 251) as u8).collect();
    let path = files.save(20, b"snapshot meta", &data).expect("save");
    let original = fs::read(&path).expect("read");
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    let check = |case: String| match files.load_latest() {
        Ok(Some(s)) => panic!("{case}: loaded a damaged snapshot ({} bytes)", s.data.len()),
        Ok(None) => panic!("{case}: the snapshot vanished"),
        Err(e @ StorageError::Corrupt { .. }) => {
            assert!(e.to_string().contains(&name), "{case}: {e}");
        }
        Err(other) => panic!("{case}: unexpected error {other:?}"),
    };
    let mut cases = 0;
    for byte in 0..original.len() {
        for bit in 0..8 {
            let mut bytes = original.clone();
            bytes[byte] ^= 1 << bit;
            fs::write(&path, &bytes).expect("flip");
            check(format!("bit {bit} of byte {byte}"));
            cases += 1;
        }
    }
    for cut in 0..original.len() {
        fs::write(&path, &original[..cut]).expect("cut");
        check(format!("cut at {cut}"));
        cases += 1;
    }
    fs::write(&path, &original).expect("restore");
    let s = files.load_latest().expect("load").expect("some");
    assert_eq!(
        (s.index, &s.meta[..], &s.data[..]),
        (20, &b"snapshot meta"[..], &data[..])
    );
    // The older snapshot is never used silently in place of a damaged newer one.
    assert_eq!(files.load(10).expect("older").data, b"older tree");
    println!("snapshot damage: {cases} cases, each refused naming the file");
}

// ---- A real node on damaged data directories ----

fn key(i: usize) -> String {
    format!("/k{i:02}")
}

fn value(i: usize) -> Vec<u8> {
    format!("value of {i}").into_bytes()
}

/// Which `/kNN` a log record creates (its payload holds the path), if any.
fn creates(data: &[u8], n: usize) -> Option<usize> {
    (0..n).find(|i| {
        let k = key(*i);
        data.windows(k.len()).any(|w| w == k.as_bytes())
    })
}

/// Asserts exactly `/k00 ..= /k(present-1)` exist, with their values.
async fn assert_prefix(server: &TestServer, present: usize, n: usize, case: &str) {
    let c = Client::connect(&server.connect_string())
        .await
        .unwrap_or_else(|e| panic!("{case}: connect: {e}"));
    for i in 0..n {
        let got = c.get_data(&key(i)).await;
        if i < present {
            let (data, _) = got.unwrap_or_else(|e| panic!("{case}: {} lost: {e}", key(i)));
            assert_eq!(data.as_ref(), &value(i)[..], "{case}: {}", key(i));
        } else {
            assert!(
                got.is_err(),
                "{case}: {} is past the cut but exists",
                key(i)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_restarts_on_a_cut_log_with_exactly_the_intact_prefix() {
    const N: usize = 8;
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut server = TestServer::start().await.expect("start");
        let c = Client::connect(&server.connect_string())
            .await
            .expect("connect");
        for i in 0..N {
            c.create(&key(i), value(i), &CreateOptions::persistent())
                .await
                .expect("create");
        }
        drop(c); // no closeSession entry: the creates are the last records
        server.stop().await;

        // Every case starts from this whole data dir: a restart on a cut log elects a
        // new term and appends to the log, which a later case must not inherit.
        let backup = tempfile::tempdir().expect("backup dir");
        copy_dir(server.data_dir(), backup.path());
        let reset = |server: &TestServer| {
            fs::remove_dir_all(server.data_dir()).expect("clear data dir");
            copy_dir(backup.path(), server.data_dir());
        };
        let log = server.data_dir().join("log");
        let path = segments(&log).pop().expect("a segment");
        let original = fs::read(&path).expect("read");
        let records = Wal::decode_segment(&original, first_index(&path)).expect("decode");
        // Byte range of each record and which key it creates.
        let mut pos = 0u64;
        let mut spans = Vec::new();
        for r in &records {
            let len = 16 + r.data.len() as u64;
            spans.push((pos, pos + len, creates(&r.data, N)));
            pos += len;
        }
        let last_creates: Vec<_> = spans
            .iter()
            .filter_map(|(s, e, k)| k.map(|k| (*s, *e, k)))
            .rev()
            .take(3)
            .collect();
        assert_eq!(last_creates.len(), 3, "the creates are in the log");
        for (start, end, k) in last_creates {
            // Right at the record, inside its header, and inside its payload.
            for cut in [start, start + 5, (start + end) / 2, end - 1] {
                reset(&server);
                fs::write(&path, &original[..cut as usize]).expect("cut");
                server.restart().await.expect("restart on a torn log");
                assert_prefix(&server, k, N, &format!("cut at {cut} in {}", key(k))).await;
                server.stop().await;
            }
        }

        // A flipped bit in the length field of the last create: refused, naming the file.
        let (start, _, _) = *spans
            .iter()
            .rev()
            .find(|s| s.2.is_some())
            .expect("a create");
        reset(&server);
        let mut bytes = original.clone();
        bytes[start as usize + 2] ^= 0x10;
        fs::write(&path, &bytes).expect("flip");
        let err = server
            .restart()
            .await
            .expect_err("a damaged length must refuse");
        let msg = err.to_string();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(
            msg.contains(&name) && msg.contains(&format!("offset {start}")),
            "{msg}"
        );

        // Restored: everything is back.
        reset(&server);
        server.restart().await.expect("restart");
        assert_prefix(&server, N, N, "restored").await;
        server.stop().await;
    })
    .await
    .expect("bounded");
}

/// Waits until the newest snapshot is within `every` entries of the applied index, so
/// that no snapshot build is still running (it would write a file behind the test's
/// back after the node stops).
async fn settle_snapshots(server: &TestServer, snaps: &SnapshotFiles, every: u64) {
    let applied = server
        .handle()
        .expect("running")
        .pipeline()
        .shared
        .applied_zxid()
        >> 16;
    for _ in 0..500 {
        let newest = snaps.list().expect("list").last().map(|(i, _)| *i);
        if newest.is_some_and(|i| i + every > applied as u64) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no snapshot near applied index {applied}");
}

fn first_index(path: &Path) -> u64 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("wal-"))
        .and_then(|s| s.parse().ok())
        .expect("segment name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_refuses_a_damaged_snapshot_naming_it() {
    const N: usize = 12;
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut server = TestServer::start_with(|c| c.snapshot_every = 5)
            .await
            .expect("start");
        let c = Client::connect(&server.connect_string())
            .await
            .expect("connect");
        for i in 0..N {
            c.create(&key(i), value(i), &CreateOptions::persistent())
                .await
                .expect("create");
        }
        drop(c);
        let snaps = SnapshotFiles::open(&server.data_dir().join("snapshots"), SyncMode::Never)
            .expect("snapshots");
        settle_snapshots(&server, &snaps, 5).await;
        server.stop().await;
        let (_, path) = snaps
            .list()
            .expect("list")
            .pop()
            .expect("a snapshot was taken");
        let original = fs::read(&path).expect("read");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let mut rng = Rng(0x5eed);
        for _ in 0..5 {
            let byte = rng.below(original.len() as u64) as usize;
            let mut bytes = original.clone();
            bytes[byte] ^= 1 << rng.below(8);
            fs::write(&path, &bytes).expect("flip");
            let err = server
                .restart()
                .await
                .expect_err("a damaged snapshot must refuse");
            let msg = err.to_string();
            assert!(msg.contains(&name), "byte {byte}: {msg}");
        }
        fs::write(&path, &original[..original.len() / 2]).expect("cut");
        let msg = server
            .restart()
            .await
            .expect_err("cut snapshot")
            .to_string();
        assert!(msg.contains(&name), "{msg}");

        fs::write(&path, &original).expect("restore");
        server.restart().await.expect("restart");
        assert_prefix(&server, N, N, "restored").await;
        server.stop().await;
    })
    .await
    .expect("bounded");
}

// ---- A preallocated log: records followed by zeros up to the end of the file ----

/// Options for a log whose last segment is extended with zeros in `step`-byte steps.
fn prealloc_opts(step: u64) -> WalOptions {
    WalOptions {
        sync: SyncMode::Never,
        segment_bytes: 64 << 20,
        preallocate_bytes: step,
    }
}

/// Record `i` of the preallocated-log tests: 300 to 1,500 bytes of non-zero data ending
/// in a non-zero byte, so that records span 512-byte sectors.
fn big_rec(i: u64) -> WalRecord {
    let n = 300 + (i as usize * 389) % 1200;
    let data = (0..n)
        .map(|k| 1 + ((k as u64 * 7 + i) % 250) as u8)
        .collect();
    WalRecord { index: i, data }
}

/// Writes `big_rec(1..=n)` into a preallocated log in `dir`; returns the segment, its
/// bytes and the start of every record (the last entry: the end of the records).
async fn write_prealloc_log(dir: &Path, n: u64, step: u64) -> (PathBuf, Vec<u8>, Vec<u64>) {
    let (wal, got) = Wal::open(dir, prealloc_opts(step)).expect("open");
    assert!(got.is_empty());
    for i in 1..=n {
        wal.append(vec![big_rec(i)]).await.expect("append");
    }
    drop(wal);
    let path = segments(dir).pop().expect("a segment");
    let bytes = fs::read(&path).expect("read");
    let mut starts = vec![0u64];
    for i in 1..=n {
        starts.push(starts[starts.len() - 1] + 16 + big_rec(i).data.len() as u64);
    }
    (path, bytes, starts)
}

#[tokio::test]
async fn preallocated_zeros_after_the_last_record_are_free_space_not_damage() {
    const N: u64 = 12;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, bytes, starts) = write_prealloc_log(dir.path(), N, 64 << 10).await;
    let end = starts[N as usize];
    assert!(
        bytes.len() as u64 > end && bytes[end as usize..].iter().all(|b| *b == 0),
        "the file holds zeros past its records ({} > {end})",
        bytes.len()
    );
    let (wal, got) = Wal::open(dir.path(), prealloc_opts(64 << 10)).expect("open");
    assert_eq!(got, (1..=N).map(big_rec).collect::<Vec<_>>());
    assert_eq!(
        fs::metadata(&path).expect("meta").len(),
        bytes.len() as u64,
        "the preallocated space is kept"
    );
    wal.append(vec![big_rec(N + 1)]).await.expect("append");
    drop(wal);
    let (_wal, got) = Wal::open(dir.path(), prealloc_opts(64 << 10)).expect("reopen");
    assert_eq!(got, (1..=N + 1).map(big_rec).collect::<Vec<_>>());
}

#[tokio::test]
async fn preallocated_segments_that_are_not_the_last_end_at_their_last_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions {
        sync: SyncMode::Never,
        segment_bytes: 4096,
        preallocate_bytes: 1024,
    };
    let (wal, _) = Wal::open(dir.path(), opts).expect("open");
    for i in 1..=20 {
        wal.append(vec![big_rec(i)]).await.expect("append");
    }
    drop(wal);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "the log rolled");
    let mut all = Vec::new();
    for path in &segs[..segs.len() - 1] {
        let bytes = fs::read(path).expect("read");
        assert_ne!(bytes.last(), Some(&0), "{}: no zero tail", path.display());
        all.push(bytes);
    }
    let (_wal, got) = Wal::open(dir.path(), opts).expect("reopen");
    assert_eq!(got, (1..=20).map(big_rec).collect::<Vec<_>>());
    // Zeros after the records of a segment that is not the last: refused, not skipped.
    let first = &segs[0];
    let mut bytes = all[0].clone();
    let end = bytes.len() as u64;
    bytes.extend_from_slice(&[0u8; 600]);
    fs::write(first, &bytes).expect("write");
    let err = Wal::open(dir.path(), opts).expect_err("zeros in an older segment");
    assert_refusal(&err, first, end, "zero tail in the first segment");
}

/// A crash before the fsync leaves each sector of the last writes either written or
/// still zero. Every cut point in the last records, with everything after it zeroed
/// (the file keeps its size): at a sector boundary, exactly the records wholly before
/// it come back and the log continues after them; anywhere else, either that or a
/// refusal naming the record — never a missing intact record.
#[tokio::test]
async fn record_torn_inside_preallocated_space_recovers_the_intact_prefix() {
    const N: u64 = 8;
    const STEP: u64 = 64 << 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, original, starts) = write_prealloc_log(dir.path(), N, STEP).await;
    let from = starts[(N - 3) as usize];
    let (mut recovered, mut refused) = (0, 0);
    for cut in from..=starts[N as usize] {
        let mut bytes = original.clone();
        bytes[cut as usize..].fill(0);
        fs::write(&path, &bytes).expect("cut");
        let case = format!("zeros from byte {cut}");
        let intact = starts.iter().filter(|s| **s <= cut).count() as u64 - 1;
        match Wal::open(dir.path(), prealloc_opts(STEP)) {
            Ok((wal, got)) => {
                assert_eq!(got, (1..=intact).map(big_rec).collect::<Vec<_>>(), "{case}");
                wal.append(vec![big_rec(intact + 1)]).await.expect("append");
                drop(wal);
                let (_wal, again) =
                    Wal::open(dir.path(), prealloc_opts(STEP)).expect("reopen after append");
                assert_eq!(
                    again,
                    (1..=intact + 1).map(big_rec).collect::<Vec<_>>(),
                    "{case}"
                );
                recovered += 1;
            }
            Err(e) => {
                assert!(
                    cut % 512 != 0,
                    "{case}: a sector-aligned torn write must recover, got {e}"
                );
                assert_refusal(&e, &path, starts[intact as usize], &case);
                refused += 1;
            }
        }
    }
    assert!(
        recovered > refused,
        "{recovered} recovered, {refused} refused"
    );
    println!("preallocated torn tail: {recovered} cut points recovered, {refused} refused");
}

/// Non-zero bytes after the last record, then zeros (a torn write of records that
/// never completed): either exactly every intact record comes back, or opening refuses
/// naming the end of the records.
#[tokio::test]
async fn garbage_after_the_last_record_never_loses_an_intact_record() {
    const N: u64 = 6;
    const STEP: u64 = 64 << 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, original, starts) = write_prealloc_log(dir.path(), N, STEP).await;
    let end = starts[N as usize];
    let all: Vec<WalRecord> = (1..=N).map(big_rec).collect();
    let (mut recovered, mut refused) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = 1 + rng.below(1500) as usize;
        let mut bytes = original.clone();
        for b in &mut bytes[end as usize..end as usize + n] {
            *b = rng.next() as u8;
        }
        // Some cases look like a record header: a plausible length and index.
        if seed % 2 == 0 && n >= 16 {
            let len = 8 + rng.below(2000) as u32;
            bytes[end as usize..end as usize + 4].copy_from_slice(&len.to_le_bytes());
            bytes[end as usize + 8..end as usize + 16].copy_from_slice(&(N + 1).to_le_bytes());
        }
        fs::write(&path, &bytes).expect("garbage");
        let case = format!("seed {seed}: {n} bytes of garbage");
        match Wal::open(dir.path(), prealloc_opts(STEP)) {
            Ok((wal, got)) => {
                assert_eq!(got, all, "{case}");
                wal.append(vec![big_rec(N + 1)]).await.expect("append");
                drop(wal);
                let (_wal, again) = Wal::open(dir.path(), prealloc_opts(STEP)).expect("reopen");
                assert_eq!(again.len() as u64, N + 1, "{case}: the garbage is gone");
                recovered += 1;
            }
            Err(e) => {
                assert_refusal(&e, &path, end, &case);
                refused += 1;
            }
        }
    }
    assert!(recovered > 0, "some garbage passes for a torn write");
    println!("garbage after the last record: {recovered} cut off as torn, {refused} refused");
}

#[tokio::test]
async fn flipped_bits_in_the_last_records_of_a_preallocated_log_refuse_to_start() {
    const N: u64 = 6;
    const STEP: u64 = 64 << 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, original, starts) = write_prealloc_log(dir.path(), N, STEP).await;
    let from = starts[(N - 2) as usize];
    let mut cases = 0;
    for byte in from..starts[N as usize] {
        // Every bit of each header (length, checksum, index); one bit per data byte.
        let in_header = starts.iter().any(|s| (*s..*s + 16).contains(&byte));
        let bits = if in_header {
            0..8
        } else {
            byte % 8..byte % 8 + 1
        };
        for bit in bits {
            let mut bytes = original.clone();
            bytes[byte as usize] ^= 1 << bit;
            fs::write(&path, &bytes).expect("flip");
            let case = format!("bit {bit} of byte {byte}");
            match Wal::open(dir.path(), prealloc_opts(STEP)) {
                Ok((_wal, got)) => panic!("{case}: opened with {} records", got.len()),
                Err(e) => {
                    let record = starts.iter().rev().find(|s| **s <= byte).copied();
                    assert_refusal(&e, &path, record.unwrap_or(0), &case);
                }
            }
            cases += 1;
        }
    }
    fs::write(&path, &original).expect("restore");
    let (_wal, got) = Wal::open(dir.path(), prealloc_opts(STEP)).expect("restored");
    assert_eq!(got, (1..=N).map(big_rec).collect::<Vec<_>>());
    println!("preallocated log bit flips: {cases} cases, each refused");
}
