//! Paths: validation and the split/join helpers.
//! Entry point: `zk_server::fuzzing::path`; run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none path` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::path(data));
