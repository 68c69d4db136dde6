//! Native protobuf ClientMessages: decode, prep/validation, apply to a tree, reply.
//! Entry point: `zk_server::fuzzing::native_request`; run with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none native_request` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::native_request(data));
