//! Durability of the real `zk-server` binary: `kill -9` in the middle of a write load
//! loses no acknowledged write; a torn log tail is recovered; a corrupt record refuses
//! to start with a message naming the file and offset.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_client::{Client, CreateOptions};

/// A port outside the kernel's ephemeral range, reserved for this process: the
/// server is killed and restarted on it.
fn free_port() -> u16 {
    zk_server::testing::free_port().expect("free port")
}

struct Proc {
    child: Child,
    addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zk-server"));
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--client-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin-addr")
        .arg("127.0.0.1:0")
        .arg("--sync")
        .arg("always")
        .arg("--tick-ms")
        .arg("500")
        .env("RUST_LOG", "warn");
    cmd
}

async fn spawn(dir: &Path, port: u16) -> Proc {
    let child = command(dir, port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zk-server");
    let addr = format!("127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Proc { child, addr }
}

/// Log files under the data dir, largest name last.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
        .filter(|p| p.extension().is_some_and(|e| e == "wal" || e == "log"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut server = spawn(dir.path(), port).await;
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut writers = Vec::new();
        for w in 0..4 {
            let addr = server.addr.clone();
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                let Ok(c) = Client::connect(&addr).await else {
                    return;
                };
                for i in 0.. {
                    let path = format!("/w{w}-{i}");
                    match c.create(&path, "v", &CreateOptions::persistent()).await {
                        Ok(_) => acked.lock().expect("lock").push(path),
                        Err(_) => return,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.child.kill().expect("kill -9");
        let _ = server.child.wait();
        for w in writers {
            let _ = w.await;
        }
        let acked = acked.lock().expect("lock").clone();
        assert!(
            acked.len() > 20,
            "the load made progress ({} writes)",
            acked.len()
        );

        let server = spawn(dir.path(), port).await;
        let c = Client::connect(&server.addr).await.expect("reconnect");
        for path in &acked {
            assert!(
                c.exists(path).await.expect("exists").is_some(),
                "acknowledged write {path} lost after kill -9"
            );
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated_and_corruption_refuses_to_start() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let server = spawn(dir.path(), port).await;
        let c = Client::connect(&server.addr).await.expect("connect");
        for i in 0..50 {
            c.create(
                &format!("/n{i}"),
                vec![b'x'; 200],
                &CreateOptions::persistent(),
            )
            .await
            .expect("create");
        }
        drop(c);
        drop(server); // kill -9

        // Torn tail: cut the last record in half (the records end before the file does:
        // the last segment is preallocated with zeros).
        let files = log_files(dir.path());
        let last = files.last().expect("a log file").clone();
        let len = records_end(&std::fs::read(&last).expect("read")) as u64;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .expect("open");
        f.set_len(len - 100).expect("truncate");
        drop(f);
        let server = spawn(dir.path(), port).await;
        let c = Client::connect(&server.addr)
            .await
            .expect("connect after torn tail");
        assert!(c.exists("/n0").await.expect("exists").is_some());
        assert!(c.exists("/n48").await.expect("exists").is_some());
        drop(c);
        drop(server);

        // Corruption in the middle of a log file: refuse to start, naming file and offset.
        let files = log_files(dir.path());
        let target = files.first().expect("a log file").clone();
        let mut bytes = std::fs::read(&target).expect("read");
        let mid = records_end(&bytes) / 2;
        bytes[mid] ^= 0x5a;
        std::fs::write(&target, &bytes).expect("write");
        let out = tokio::task::spawn_blocking({
            let dir = dir.path().to_path_buf();
            move || command(&dir, port).output().expect("run")
        })
        .await
        .expect("join");
        assert!(!out.status.success(), "a corrupt log must stop the server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = target
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(stderr.contains(&name), "error names the file: {stderr}");
        assert!(
            stderr.contains("offset"),
            "error names the offset: {stderr}"
        );
    })
    .await
    .expect("bounded");
}

/// Where a segment's records end: after its last non-zero byte (preallocated zeros
/// follow; the records of these tests end in non-zero data).
fn records_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1)
}
