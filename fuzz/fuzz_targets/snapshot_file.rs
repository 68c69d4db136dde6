//! Snapshot files: framing and checksum, raft meta, tree decode.
//! Entry point: `zk_server::fuzzing::snapshot_file`; run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none snapshot_file` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::snapshot_file(data));
