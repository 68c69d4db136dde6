//! WAL segment bytes and log entry payloads, decoded as on open.
//! Entry point: `zk_server::fuzzing::wal_segment`; run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none wal_segment` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::wal_segment(data));
