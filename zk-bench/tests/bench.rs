//! Runs the real `zk-bench` binary briefly against a real in-process server, once per
//! workload (lock included) and target (native protocol, ZooKeeper protocol), and checks
//! the JSON line and that the bench root is cleaned up.

use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;
use tokio::time::timeout;
use zk_client::Client;
use zk_server::testing::TestServer;

async fn bench(addr: &str, target: &str, workload: &str) -> Value {
    let out = timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_zk-bench"))
            .env_remove("ZK_SERVER")
            .args(["--server", addr, "--target", target, "--workload", workload])
            .args(["--clients", "2", "--inflight", "4", "--duration", "1"])
            .args(["--warmup", "0.2", "--keys", "20", "--value-size", "16"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("zk-bench finishes in time")
    .expect("zk-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{workload}: {stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_reports_one_json_line_and_cleans_up() {
    let server = TestServer::start().await.expect("server starts");
    let addr = server.connect_string();
    for (target, workload) in ["native", "zk"].into_iter().flat_map(|t| {
        ["create", "set", "get", "mixed", "watch", "lock"]
            .into_iter()
            .map(move |w| (t, w))
    }) {
        let r = bench(&addr, target, workload).await;
        assert_eq!(r["target"], target);
        assert_eq!(r["workload"], workload);
        assert_eq!(r["clients"], 2);
        assert_eq!(r["inflight"], 4);
        assert_eq!(r["value_size"], 16);
        assert!(r["ops"].as_u64().expect("ops") > 0, "{workload}: {r}");
        assert_eq!(r["errors"], 0, "{workload}: {r}");
        let p50 = r["p50_us"].as_u64().expect("p50");
        let p99 = r["p99_us"].as_u64().expect("p99");
        let max = r["max_us"].as_u64().expect("max");
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{r}");
        assert!(r["ops_per_sec"].as_f64().expect("rate") > 0.0);
        assert!(
            (r["duration_s"].as_f64().expect("duration") - 1.0).abs() < 0.1,
            "{r}"
        );
    }
    let client = Client::connect(&addr).await.expect("connects");
    let (children, _) = client.get_children("/").await.expect("ls /");
    assert!(
        children.iter().all(|c| !c.starts_with("bench-")),
        "bench root left behind: {children:?}"
    );
    client.close().await.expect("close");
}
