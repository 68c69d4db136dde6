//! ZooKeeper-protocol (jute) frames: ConnectRequest, header + request decode, prep, apply, reply encode.
//! Entry point: `zk_server::fuzzing::jute_request`; run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none jute_request` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::jute_request(data));
