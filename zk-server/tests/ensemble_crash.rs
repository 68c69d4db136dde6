//! A real 3-process ensemble (the `zk-server` binary, fsync on): `kill -9` of the
//! leader under a write load from several clients loses no acknowledged write, the
//! clients' sessions survive with their ephemerals, writes resume, and the killed
//! server rejoins and catches up.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_client::{Client, CreateOptions};

/// A port outside the kernel's ephemeral range, reserved for this process: the
/// server is killed and restarted on it.
fn free_port() -> u16 {
    zk_server::testing::free_port().expect("free port")
}

struct Node {
    child: Option<Child>,
    client: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, id: usize, peers: &str, client: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .args(["--id", &id.to_string(), "--peers", peers])
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .args([
            "--client-addr",
            client,
            "--admin-addr",
            "127.0.0.1:0",
            "--sync",
            "always",
            "--tick-ms",
            "500",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zk-server")
}

async fn wait_leader(nodes: &[Node]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        for n in nodes.iter().filter(|n| n.child.is_some()) {
            if let Ok(Ok(c)) =
                tokio::time::timeout(Duration::from_secs(2), Client::connect(&n.client)).await
            {
                if let Ok(Ok(s)) =
                    tokio::time::timeout(Duration::from_secs(2), c.cluster_status()).await
                {
                    if s.leader > 0 {
                        return (s.leader - 1) as usize;
                    }
                }
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_under_load_loses_no_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers: Vec<String> = peer_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect();
        let peers = peers.join(",");
        let mut nodes: Vec<Node> = (0..3)
            .map(|i| {
                let client = format!("127.0.0.1:{}", free_port());
                Node {
                    child: Some(spawn(dir.path(), i + 1, &peers, &client)),
                    client,
                }
            })
            .collect();
        let leader = wait_leader(&nodes).await;

        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        let mut writers = Vec::new();
        for w in 0..3usize {
            let servers: Vec<String> = (0..3).map(|k| nodes[(w + k) % 3].client.clone()).collect();
            let c = Client::builder()
                .servers(&servers.join(","))
                .session_timeout(Duration::from_secs(5))
                .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
                .connect()
                .await
                .expect("connect");
            c.create(&format!("/eph-{w}"), "", &CreateOptions::ephemeral())
                .await
                .expect("ephemeral");
            clients.push(c.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/w{w}-{i}");
                    match c.create(&path, "v", &CreateOptions::persistent()).await {
                        Ok(_) => {
                            acked.lock().expect("lock").push(path);
                            i += 1;
                        }
                        Err(e) if e.code() == zk_client::Code::NodeExists => {
                            acked.lock().expect("lock").push(path);
                            i += 1;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let before = acked.lock().expect("lock").len();
        if let Some(mut c) = nodes[leader].child.take() {
            c.kill().expect("kill -9");
            let _ = c.wait();
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.expect("writer");
        }
        let acked = acked.lock().expect("lock").clone();
        assert!(
            acked.len() > before + 5,
            "writes resumed after the kill ({before} -> {})",
            acked.len()
        );

        // Every acknowledged write is on a survivor; every session survived.
        let survivor = &nodes[(leader + 1) % 3].client;
        let check = Client::connect(survivor).await.expect("connect survivor");
        check.sync("/").await.expect("sync");
        for path in &acked {
            assert!(
                check.exists(path).await.expect("exists").is_some(),
                "acknowledged {path} lost"
            );
        }
        for (w, c) in clients.iter().enumerate() {
            let st = check.exists(&format!("/eph-{w}")).await.expect("exists");
            assert_eq!(
                st.map(|s| s.ephemeral_owner),
                Some(c.session_id()),
                "session {w} survived"
            );
        }

        // The killed server restarts, rejoins and catches up.
        nodes[leader].child = Some(spawn(dir.path(), leader + 1, &peers, &nodes[leader].client));
        let back = loop {
            if let Ok(c) = Client::connect(&nodes[leader].client).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        back.sync("/").await.expect("sync");
        for path in acked.iter().rev().take(50) {
            assert!(
                back.exists(path).await.expect("exists").is_some(),
                "{path} on the restarted server"
            );
        }
    })
    .await
    .expect("bounded");
}
