//! Per-stage timestamps of the write path, for measuring where a write's time goes
//! (client receive → forward → propose → fsync → replicate → commit → apply → reply).
//!
//! Each mark is one `tracing` event at DEBUG level on the target `zk_timeline`, with the
//! wall clock in microseconds (`t_us`, comparable between processes on one machine), a
//! stage name and the log index it concerns. Off by default (a disabled callsite costs a
//! branch); enable with `RUST_LOG=warn,zk_timeline=debug`. `bench/timeline.py` turns the
//! marks of an ensemble's logs into per-stage latencies.

use std::time::{SystemTime, UNIX_EPOCH};

/// The tracing target of every mark.
pub const TARGET: &str = "zk_timeline";

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Whether marks are recorded (so callers can skip computing their fields).
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// Records stage `$stage` at log index `$index`, with optional extra fields.
#[macro_export]
macro_rules! mark {
    ($stage:literal, $index:expr $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::debug!(
            target: "zk_timeline",
            t_us = $crate::timeline::now_us(),
            stage = $stage,
            index = $index
            $(, $k = $v)*
        )
    };
}
