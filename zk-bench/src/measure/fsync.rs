//! The disk's durable-write floor: append 4 KiB to a temp file and `fdatasync` it, N
//! times (what a write-ahead log does for each group commit); p50 / p99 / max.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::report::Stats;

/// Flags of `zk-bench fsync`.
#[derive(Debug, Clone, clap::Args)]
pub struct FsyncArgs {
    /// A directory on the filesystem to probe (e.g. the server's data dir).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Number of 4 KiB write + fdatasync rounds.
    #[arg(long, default_value_t = 500)]
    pub count: u32,
    /// A label stored in the line (e.g. `before zk-server`).
    #[arg(long)]
    pub phase: Option<String>,
}

/// Removes the probe file however the probe ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the probe; the result as a JSON line.
pub fn run(args: &FsyncArgs) -> Result<Vec<String>, String> {
    let stats = probe(&args.dir, args.count)?;
    let mut v: serde_json::Value =
        serde_json::from_str(&line(&args.dir, &stats)).map_err(|e| e.to_string())?;
    v["loopback_rtt_p50_us"] = json!(loopback_rtt_p50_us(1000)?);
    if let Some(phase) = &args.phase {
        v["phase"] = json!(phase);
    }
    Ok(vec![v.to_string()])
}

/// p50 of `rounds` 64-byte ping-pongs over a loopback TCP connection (the other half of
/// a durable write's floor).
pub fn loopback_rtt_p50_us(rounds: u32) -> Result<u64, String> {
    let err = |e: std::io::Error| format!("loopback probe: {e}");
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        for _ in 0..rounds {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut s = TcpStream::connect(addr).map_err(err)?;
    s.set_nodelay(true).map_err(err)?;
    let mut stats = Stats::new();
    let mut buf = [7u8; 64];
    for _ in 0..rounds {
        let t = Instant::now();
        s.write_all(&buf)
            .and_then(|()| s.read_exact(&mut buf))
            .map_err(err)?;
        stats.record(t.elapsed());
    }
    let _ = echo.join();
    Ok(stats.latency_us.value_at_quantile(0.5))
}

/// `count` rounds of append 4 KiB + fdatasync in a temp file in `dir`.
pub fn probe(dir: &Path, count: u32) -> Result<Stats, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("fsync probe: {}: {e}", dir.display()))?;
    let path = dir.join(format!(".zk-bench-fsync-{}", std::process::id()));
    let _guard = TempFile(path.clone());
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("fsync probe: {}: {e}", path.display()))?;
    let block = [0x5au8; 4096];
    let mut stats = Stats::new();
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("fsync probe: {}: {e}", path.display()))?;
        stats.record(t.elapsed());
    }
    stats.elapsed_s = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// `{"measure":"fsync","dir","count","p50_us","p99_us","max_us"}`.
pub fn line(dir: &Path, stats: &Stats) -> String {
    let h = &stats.latency_us;
    let q = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(p)
        }
    };
    json!({
        "measure": "fsync",
        "dir": dir.display().to_string(),
        "count": stats.ops,
        "p50_us": q(0.5),
        "p99_us": q(0.99),
        "max_us": h.max(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("zkb-fsync-test-{}", std::process::id()));
        let stats = probe(&dir, 5).expect("probe");
        assert_eq!(stats.ops, 5);
        let text = line(&dir, &stats);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["measure"], "fsync");
        assert!(v["p50_us"].as_u64().expect("p50") <= v["max_us"].as_u64().expect("max"));
        let left = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(left, 0, "the probe file is removed");
        let _ = std::fs::remove_dir(&dir);
    }
}
