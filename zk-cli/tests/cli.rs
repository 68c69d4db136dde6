//! Runs the real `zkcli` binary against a real in-process server.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;
use tokio::time::timeout;
use zk_client::{Client, CreateOptions};
use zk_server::testing::TestServer;

const LIMIT: Duration = Duration::from_secs(30);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

fn zkcli_command(server: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkcli"));
    cmd.env_remove("ZK_SERVER")
        .arg("--server")
        .arg(server)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn zkcli(server: &str, args: &[&str]) -> Run {
    let out = timeout(LIMIT, zkcli_command(server, args).output())
        .await
        .unwrap_or_else(|_| panic!("zkcli {args:?} timed out"))
        .expect("zkcli runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn server() -> (TestServer, String) {
    let server = TestServer::start().await.expect("server starts");
    let addr = server.connect_string();
    (server, addr)
}

async fn client(addr: &str) -> Client {
    timeout(LIMIT, Client::connect(addr))
        .await
        .expect("connect in time")
        .expect("connects")
}

/// Runs `body` with an overall time limit.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    timeout(Duration::from_secs(60), body)
        .await
        .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_set_stat_in_text() {
    bounded(async {
        let (_server, addr) = server().await;
        let r = zkcli(&addr, &["create", "/a", "hello"]).await.ok();
        assert_eq!(r.stdout, "/a\n");
        assert_eq!(zkcli(&addr, &["get", "/a"]).await.ok().stdout, "hello\n");
        let r = zkcli(&addr, &["set", "/a", "world"]).await.ok();
        assert_eq!(r.stdout, "");
        assert_eq!(zkcli(&addr, &["get", "/a"]).await.ok().stdout, "world\n");

        let stat = zkcli(&addr, &["stat", "/a"]).await.ok().stdout;
        let keys: Vec<&str> = stat
            .lines()
            .map(|l| l.split(" = ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "cZxid",
                "ctime",
                "mZxid",
                "mtime",
                "pZxid",
                "cversion",
                "dataVersion",
                "aclVersion",
                "ephemeralOwner",
                "dataLength",
                "numChildren"
            ]
        );
        assert!(
            stat.lines().next().unwrap_or("").starts_with("cZxid = 0x"),
            "{stat}"
        );
        assert!(stat.contains("\ndataVersion = 1\n"), "{stat}");
        assert!(stat.contains("\nephemeralOwner = 0x0\n"), "{stat}");
        assert!(stat.contains("\ndataLength = 5\n"), "{stat}");
        assert!(stat.contains(" UTC "), "{stat}");

        // Versioned set: the wrong version is an error, the right one works.
        let r = zkcli(&addr, &["set", "-v", "7", "/a", "x"]).await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.starts_with("Error: bad version"), "{}", r.stderr);
        zkcli(&addr, &["set", "-v", "1", "/a", "x"]).await.ok();
        zkcli(&addr, &["set", "-v", "-1", "/a", "y"]).await.ok();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output() {
    bounded(async {
        let (_server, addr) = server().await;
        let created = zkcli(&addr, &["--json", "create", "/j", "data"])
            .await
            .ok()
            .json();
        assert_eq!(created["path"], "/j");
        assert_eq!(created["stat"]["version"], 0);

        // --json after the command works too.
        let got = zkcli(&addr, &["get", "/j", "--json"]).await.ok().json();
        assert_eq!(got["path"], "/j");
        assert_eq!(got["data"], "data");
        assert_eq!(got["encoding"], "utf8");
        assert_eq!(got["stat"]["data_length"], 4);
        assert_eq!(got["stat"]["czxid"], created["stat"]["czxid"]);

        let set = zkcli(&addr, &["--json", "set", "/j", "more"])
            .await
            .ok()
            .json();
        assert_eq!(set["stat"]["version"], 1);
        let stat = zkcli(&addr, &["--json", "stat", "/j"]).await.ok().json();
        assert_eq!(stat["stat"]["version"], 1);
        assert_eq!(stat["stat"]["num_children"], 0);

        zkcli(&addr, &["create", "/j/c1"]).await.ok();
        let ls = zkcli(&addr, &["--json", "ls", "/j"]).await.ok().json();
        assert_eq!(ls["children"], serde_json::json!(["c1"]));
        let ls = zkcli(&addr, &["--json", "ls", "-R", "/j"])
            .await
            .ok()
            .json();
        assert_eq!(ls["paths"], serde_json::json!(["/j", "/j/c1"]));
        let sync = zkcli(&addr, &["--json", "sync", "/j"]).await.ok().json();
        assert_eq!(sync["synced"], true);
        let del = zkcli(&addr, &["--json", "delete", "/j/c1"])
            .await
            .ok()
            .json();
        assert_eq!(del["deleted"], true);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_data_is_escaped_or_base64() {
    bounded(async {
        let (_server, addr) = server().await;
        let c = client(&addr).await;
        c.create("/bin", vec![0u8, 0xff, b'a'], &CreateOptions::persistent())
            .await
            .expect("create");
        assert_eq!(
            zkcli(&addr, &["get", "/bin"]).await.ok().stdout,
            "\\x00\\xffa\n"
        );
        let got = zkcli(&addr, &["--json", "get", "/bin"]).await.ok().json();
        assert_eq!(got["encoding"], "base64");
        assert_eq!(got["data"], "AP9h");
        c.close().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_node_is_one_error_line_and_exit_1() {
    bounded(async {
        let (_server, addr) = server().await;
        for args in [
            &["get", "/nope"][..],
            &["stat", "/nope"],
            &["set", "/nope", "x"],
            &["delete", "/nope"],
            &["ls", "/nope"],
            &["deleteall", "/nope"],
        ] {
            let r = zkcli(&addr, args).await;
            assert_eq!(r.code, 1, "{args:?}");
            assert_eq!(r.stdout, "", "{args:?}");
            assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
            assert!(
                r.stderr.starts_with("Error: no node at /nope"),
                "{args:?}: {}",
                r.stderr
            );
        }
        let r = zkcli(&addr, &["create", "/missing/child"]).await;
        assert_eq!(r.code, 1);
        assert!(
            r.stderr.starts_with("Error: no node at /missing"),
            "{}",
            r.stderr
        );
        zkcli(&addr, &["create", "/dup"]).await.ok();
        let r = zkcli(&addr, &["create", "/dup"]).await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    bounded(async {
        // No server needed: clap rejects these before connecting.
        let addr = "127.0.0.1:1";
        for args in [
            &["create", "-e", "-t", "1000", "/x"][..],
            &["create", "-c", "-s", "/x"],
            &["create", "-c", "-e", "/x"],
            &["get"],
            &["frobnicate", "/x"],
            &["watch", "--count", "many", "/x"],
        ] {
            let r = zkcli(addr, args).await;
            assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
            assert!(r.stderr.starts_with("error:"), "{args:?}: {}", r.stderr);
        }
        assert_eq!(zkcli(addr, &["--help"]).await.code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_one_error_line() {
    bounded(async {
        // A port nobody listens on.
        let port = zk_server::testing::free_port().expect("free port");
        let addr = format!("127.0.0.1:{port}");
        let r = zkcli(&addr, &["--connect-timeout", "2", "get", "/a"]).await;
        assert_eq!(r.code, 1);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.starts_with("Error: cannot connect to"),
            "{}",
            r.stderr
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_modes() {
    bounded(async {
        let (_server, addr) = server().await;
        zkcli(&addr, &["create", "/m"]).await.ok();
        let seq = zkcli(&addr, &["create", "-s", "/m/s-", "x"])
            .await
            .ok()
            .stdout;
        assert_eq!(seq, "/m/s-0000000000\n");
        let seq = zkcli(&addr, &["create", "-s", "/m/s-"]).await.ok().stdout;
        assert_eq!(seq, "/m/s-0000000001\n");

        // An ephemeral node goes when zkcli's session closes at exit.
        let eph = zkcli(&addr, &["--json", "create", "-e", "/m/e"])
            .await
            .ok()
            .json();
        assert_ne!(eph["stat"]["ephemeral_owner"], 0);
        let eseq = zkcli(&addr, &["create", "-e", "-s", "/m/es-"])
            .await
            .ok()
            .stdout;
        assert!(eseq.starts_with("/m/es-00000000"), "{eseq}");
        let c = client(&addr).await;
        assert_eq!(c.exists("/m/e").await.expect("exists"), None);

        zkcli(&addr, &["create", "-c", "/m/container"]).await.ok();
        let ttl = zkcli(&addr, &["create", "-t", "60000", "/m/ttl"])
            .await
            .ok()
            .stdout;
        assert_eq!(ttl, "/m/ttl\n");
        let ttl = zkcli(&addr, &["create", "-s", "-t", "60000", "/m/ttls-"])
            .await
            .ok()
            .stdout;
        assert!(ttl.starts_with("/m/ttls-"), "{ttl}");
        c.close().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_recursive_delete_deleteall_sync() {
    bounded(async {
        let (_server, addr) = server().await;
        for p in ["/t", "/t/b", "/t/a", "/t/a/x", "/t/a/x/y"] {
            zkcli(&addr, &["create", p]).await.ok();
        }
        assert_eq!(zkcli(&addr, &["ls", "/t"]).await.ok().stdout, "a\nb\n");
        assert_eq!(zkcli(&addr, &["ls", "/t/b"]).await.ok().stdout, "");
        assert_eq!(
            zkcli(&addr, &["ls", "-R", "/t"]).await.ok().stdout,
            "/t\n/t/a\n/t/b\n/t/a/x\n/t/a/x/y\n"
        );
        let r = zkcli(&addr, &["delete", "/t/a"]).await;
        assert_eq!(r.code, 1);
        assert!(
            r.stderr.starts_with("Error: node /t/a is not empty"),
            "{}",
            r.stderr
        );
        let r = zkcli(&addr, &["delete", "-v", "3", "/t/b"]).await;
        assert_eq!(r.code, 1);
        zkcli(&addr, &["delete", "-v", "0", "/t/b"]).await.ok();
        zkcli(&addr, &["sync", "/t"]).await.ok();
        zkcli(&addr, &["deleteall", "/t"]).await.ok();
        assert_eq!(zkcli(&addr, &["stat", "/t"]).await.code, 1);
    })
    .await;
}

/// Starts `zkcli watch ...`, then sets `node` every 100 ms until the watcher exits.
async fn watch_while_setting(addr: &str, args: &[&str], node: &str) -> Run {
    let c = client(addr).await;
    let child = zkcli_command(addr, args)
        .spawn()
        .expect("spawn zkcli watch");
    let output = child.wait_with_output();
    tokio::pin!(output);
    let out = timeout(LIMIT, async {
        loop {
            tokio::select! {
                out = &mut output => return out,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    c.set_data(node, "tick", None).await.expect("set");
                }
            }
        }
    })
    .await
    .expect("watch exits after --count events")
    .expect("zkcli watch runs");
    c.close().await.expect("close");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_events_and_stops_after_count() {
    bounded(async {
        let (_server, addr) = server().await;
        zkcli(&addr, &["create", "/w"]).await.ok();
        let r = watch_while_setting(&addr, &["watch", "--count", "2", "/w"], "/w")
            .await
            .ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}", r.stdout);
        for line in lines {
            assert!(line.starts_with("NodeDataChanged /w zxid=0x"), "{line}");
        }

        zkcli(&addr, &["create", "/w/c"]).await.ok();
        let r = watch_while_setting(
            &addr,
            &["--json", "watch", "-r", "--count", "3", "/w"],
            "/w/c",
        )
        .await
        .ok();
        let events: Vec<Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(events.len(), 3, "{}", r.stdout);
        let mut last = 0;
        for e in events {
            assert_eq!(e["event"], "NodeDataChanged");
            assert_eq!(e["path"], "/w/c");
            let zxid = e["zxid"].as_i64().expect("zxid");
            assert!(zxid > last, "zxids increase");
            last = zxid;
        }
    })
    .await;
}

#[tokio::test]
async fn acls_and_auth() {
    bounded(async {
        let (_s, addr) = server().await;
        let hash = zk_client::digest_id("bob", "pw");
        let acl = format!("digest:{hash}:cdrwa,world:anyone:r");
        zkcli(
            &addr,
            &[
                "--auth",
                "digest:bob:pw",
                "create",
                "--acl",
                &acl,
                "/p",
                "v",
            ],
        )
        .await
        .ok();
        // Readable by anyone, writable only with bob's credentials.
        let r = zkcli(&addr, &["set", "/p", "x"]).await;
        assert_eq!(r.code, 1, "{}", r.stdout);
        assert!(r.stderr.contains("not authorized"), "{}", r.stderr);
        zkcli(&addr, &["--auth", "digest:bob:pw", "set", "/p", "x"])
            .await
            .ok();
        // Without ADMIN the digest is redacted; with it, shown.
        let r = zkcli(&addr, &["getacl", "/p"]).await.ok();
        assert_eq!(
            r.stdout.trim(),
            "'digest,'bob:x\n: cdrwa\n'world,'anyone\n: r"
        );
        let r = zkcli(
            &addr,
            &["--auth", "digest:bob:pw", "--json", "getacl", "/p"],
        )
        .await
        .ok();
        assert_eq!(r.json()["acl"][0]["id"], hash.as_str());
        zkcli(
            &addr,
            &[
                "--auth",
                "digest:bob:pw",
                "setacl",
                "-v",
                "0",
                "/p",
                "world:anyone:cdrwa",
            ],
        )
        .await
        .ok();
        let r = zkcli(&addr, &["--json", "getacl", "/p"]).await.ok();
        assert_eq!(r.json()["stat"]["aversion"], 1);
        let r = zkcli(&addr, &["setacl", "/p", "world:anyone:q"]).await;
        assert_ne!(r.code, 0);
        let r = zkcli(&addr, &["--auth", "nocolon", "get", "/p"]).await;
        assert_ne!(r.code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_and_x509_acls() {
    bounded(async {
        let ca = tests::certs::TestCa::new("zkcli test CA");
        let server_files = ca.issue("server", "zk-server", "Example");
        let app = ca.issue("app", "app", "Example");
        let other = ca.issue("other", "other", "Example");
        let s = TestServer::start_with(|c| {
            c.tls.cert = Some(server_files.cert.clone());
            c.tls.key = Some(server_files.key.clone());
            c.tls.ca = Some(ca.ca.clone());
            c.tls.client_auth = zk_server::tls::ClientAuth::Need;
        })
        .await
        .expect("TLS server");
        let addr = s.connect_string();
        let ca_path = ca.ca.display().to_string();
        let as_cert = |f: &tests::certs::CertFiles| {
            vec![
                "--tls-ca".to_string(),
                ca_path.clone(),
                "--tls-cert".to_string(),
                f.cert.display().to_string(),
                "--tls-key".to_string(),
                f.key.display().to_string(),
            ]
        };
        let run = |flags: Vec<String>, rest: &[&str]| {
            let mut args: Vec<String> = flags;
            args.extend(rest.iter().map(|a| a.to_string()));
            let addr = addr.clone();
            async move {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                zkcli(&addr, &refs).await
            }
        };
        run(
            as_cert(&app),
            &[
                "create",
                "--acl",
                "x509:CN=app,O=Example:cdrwa",
                "/x",
                "mine",
            ],
        )
        .await
        .ok();
        let r = run(as_cert(&app), &["get", "/x"]).await.ok();
        assert_eq!(r.stdout.trim(), "mine");
        let r = run(as_cert(&other), &["get", "/x"]).await;
        assert_eq!(r.code, 1, "{}", r.stdout);
        assert!(r.stderr.contains("not authorized"), "{}", r.stderr);
        // No client certificate, or no TLS at all: no connection.
        let no_cert = vec!["--tls-ca".into(), ca_path.clone()];
        let r = run(no_cert, &["--connect-timeout", "2", "get", "/x"]).await;
        assert_eq!(r.code, 1, "{}", r.stdout);
        let r = run(vec![], &["--connect-timeout", "2", "get", "/x"]).await;
        assert_eq!(r.code, 1, "{}", r.stdout);
    })
    .await;
}
