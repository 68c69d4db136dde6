//! Loopback ports for servers that tests start and restart at a fixed address.
//!
//! A port picked by binding port 0 and releasing it comes from the kernel's ephemeral
//! range, which every outgoing connection (a peer dial, a client, a JVM) also draws
//! from: on a busy machine running tests in parallel, such a port is sometimes taken
//! before the server binds it, or while a killed server is down before its restart, and
//! two ensembles can end up naming the same address. So ports here come from below the
//! ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), where the kernel never
//! hands out ports by itself, and each is reserved for the life of the process: in this
//! process by a set, across processes (parallel test binaries, nextest) by an
//! exclusive lock on a file per port in the temp dir, released when the process ends.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::ServerError;

/// Ports handed out by this process, with their lock files (held until exit).
static HELD: Mutex<Option<HashMap<u16, File>>> = Mutex::new(None);

/// How many ports below the ephemeral range are used.
const SPAN: u16 = 16_384;

/// The range to pick from: `SPAN` ports below the kernel's ephemeral range (its low
/// end, 32768 on Linux by default), never below 1024.
fn range() -> (u16, u16) {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    let start = low.saturating_sub(SPAN).max(1024);
    (start, low.max(start + 1))
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("zk-test-ports")
}

/// Reserves `port` for this process if no other process holds it: its lock file.
fn reserve(port: u16) -> Option<File> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// A loopback port that is free now, outside the ephemeral range, and that no other
/// call in this process or other process using this function gets until this process
/// ends. Falls back to a kernel-picked port if none is found.
pub fn free_port() -> Result<u16, ServerError> {
    let (start, end) = range();
    let span = u32::from(end - start);
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    let held = held.get_or_insert_with(HashMap::new);
    let first = rand::random::<u32>() % span;
    for k in 0..span.min(4096) {
        let port = start + ((first + k) % span) as u16;
        if held.contains_key(&port) {
            continue;
        }
        let Some(lock) = reserve(port) else { continue };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            held.insert(port, lock);
            return Ok(port);
        }
    }
    kernel_port()
}

/// A port the kernel picks (bind to port 0, release): racy on a busy machine.
fn kernel_port() -> Result<u16, ServerError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ServerError::Bind {
            addr: "127.0.0.1:0".into(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_outside_the_ephemeral_range_and_locked() {
        let (start, end) = range();
        let ports: Vec<u16> = (0..50).map(|_| free_port().expect("port")).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port was handed out twice");
        for p in &ports {
            assert!((start..end).contains(p), "{p} outside {start}..{end}");
            // Another holder (another process) cannot reserve it.
            assert!(reserve(*p).is_none(), "{p} is not locked");
        }
    }
}
