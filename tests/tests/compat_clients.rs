//! Independent ZooKeeper clients against our server, single node and 3-node ensemble:
//! kazoo (Python, `tests/compat/kazoo_check.py`) and Apache Curator 5.4 on the Java
//! ZooKeeper client 3.8 (Debian's packages, `tests/compat/CuratorCheck.java`). Each
//! program exercises plain operations, watches, transactions and its library's own
//! recipes, and exits 0 only if every check passed. `.ci/run` installs both; where one
//! is missing, its test prints a NOTICE and passes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tests::{bounded, init_tracing};
use zk_server::testing::{TestCluster, TestServer};

/// Jars the Curator check needs, from Debian's libcurator-*-java and zookeeper packages.
const JARS: &[&str] = &[
    "curator-client",
    "curator-framework",
    "curator-recipes",
    "curator-x-discovery",
    "jackson-annotations",
    "jackson-core",
    "jackson-databind",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "slf4j-api",
    "slf4j-nop",
    "netty-handler",
    "netty-transport",
    "netty-common",
    "netty-buffer",
    "netty-codec",
    "netty-resolver",
    "netty-transport-native-epoll",
    "netty-transport-native-unix-common",
];

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat")
}

/// `java -cp JARS CuratorCheck.java`, or None (with a notice) if Java or a jar is missing.
fn curator_command() -> Option<tokio::process::Command> {
    java_command("CuratorCheck.java", &[])
}

/// `java [PROPS] -cp JARS <program>` from tests/compat, or None (with a notice) if Java or
/// a jar is missing.
fn java_command(program: &str, props: &[String]) -> Option<tokio::process::Command> {
    let mut cp = Vec::new();
    for jar in JARS {
        let path = Path::new("/usr/share/java").join(format!("{jar}.jar"));
        if !path.exists() {
            println!(
                "NOTICE: {} missing (apt-get install -y libcurator-recipes-java libcurator-discovery-java zookeeper); skipping",
                path.display()
            );
            return None;
        }
        cp.push(path.display().to_string());
    }
    if std::process::Command::new("java")
        .arg("-version")
        .output()
        .is_err()
    {
        println!("NOTICE: no java; skipping");
        return None;
    }
    let mut cmd = tokio::process::Command::new("java");
    cmd.args(props)
        .arg("-cp")
        .arg(cp.join(":"))
        .arg(compat_dir().join(program));
    Some(cmd)
}

/// `python3 kazoo_check.py`, or None (with a notice) if kazoo is not importable.
fn kazoo_command() -> Option<tokio::process::Command> {
    let has_kazoo = std::process::Command::new("python3")
        .args(["-c", "import kazoo"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_kazoo {
        println!("NOTICE: python3 with kazoo not found (pip install kazoo); skipping");
        return None;
    }
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(compat_dir().join("kazoo_check.py"));
    Some(cmd)
}

/// Runs a check program against `hosts` and asserts it passed, showing its output.
async fn run_check(mut cmd: tokio::process::Command, hosts: &str, expect: &str) {
    let out = tokio::time::timeout(
        Duration::from_secs(150),
        cmd.arg(hosts)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("check program finished in time")
    .expect("check program started");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{hosts}: {text}");
    assert!(text.contains(expect), "{text}");
}

/// Production-like ticks (session timeouts of seconds, as the clients ask for), fsync off.
async fn single() -> TestServer {
    init_tracing();
    TestServer::start_with(|c| c.tick_ms = 1000)
        .await
        .expect("start server")
}

async fn ensemble() -> TestCluster {
    init_tracing();
    TestCluster::start_with(3, 0, |c| c.tick_ms = 1000)
        .await
        .expect("start ensemble")
}

#[tokio::test]
async fn kazoo_against_one_server() {
    let Some(cmd) = kazoo_command() else { return };
    bounded(180, async {
        let s = single().await;
        run_check(cmd, &s.connect_string(), "kazoo compat:").await;
    })
    .await;
}

#[tokio::test]
async fn kazoo_against_an_ensemble() {
    let Some(cmd) = kazoo_command() else { return };
    bounded(180, async {
        let c = ensemble().await;
        run_check(cmd, &c.connect_string(), "kazoo compat:").await;
    })
    .await;
}

#[tokio::test]
async fn curator_against_one_server() {
    let Some(cmd) = curator_command() else { return };
    bounded(180, async {
        let s = single().await;
        run_check(cmd, &s.connect_string(), "curator compat:").await;
    })
    .await;
}

#[tokio::test]
async fn curator_against_an_ensemble() {
    let Some(cmd) = curator_command() else { return };
    bounded(180, async {
        let c = ensemble().await;
        run_check(cmd, &c.connect_string(), "curator compat:").await;
    })
    .await;
}

/// Runs a failover program (it prints `CONNECTED host:port`, then waits for a line on
/// stdin) against a 3-node ensemble, kills the server it named, lets it go on, and
/// asserts it passed and printed `expect`.
async fn run_failover(mut cmd: tokio::process::Command, expect: &str) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut c = ensemble().await;
    let mut child = cmd
        .arg(c.connect_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the failover program");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut first = String::new();
    while let Some(line) = out.next_line().await.expect("read") {
        if line.starts_with("CONNECTED ") || line.starts_with("FAIL") {
            first = line;
            break;
        }
    }
    let mut err = String::new();
    let Some(addr) = first.strip_prefix("CONNECTED ").map(str::to_string) else {
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err).await;
        }
        panic!("no CONNECTED line: {first:?}\n{err}");
    };
    let victim = (0..c.len())
        .find(|&i| c.client_addr(i) == addr)
        .unwrap_or_else(|| panic!("{addr} is not a server of {}", c.connect_string()));
    c.stop(victim).await;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").await.expect("write");
    drop(stdin);
    let mut rest = Vec::new();
    while let Some(line) = out.next_line().await.expect("read") {
        rest.push(line);
    }
    let status = child.wait().await.expect("wait");
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err).await;
    }
    assert!(status.success(), "{rest:?}\n{err}");
    assert!(rest.iter().any(|l| l.contains(expect)), "{rest:?}");
}

/// kazoo connected to one server of an ensemble keeps its session, ephemeral node and
/// watch when that server is killed: it moves to another server (ZooKeeper's session
/// semantics, which Curator and kazoo rely on).
#[tokio::test]
async fn kazoo_session_moves_when_its_server_dies() {
    if kazoo_command().is_none() {
        return;
    }
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(compat_dir().join("kazoo_failover.py"));
    bounded(180, run_failover(cmd, "session moved")).await;
}

/// The same with Apache's Java client.
#[tokio::test]
async fn java_session_moves_when_its_server_dies() {
    let Some(cmd) = java_command("JavaFailover.java", &[]) else {
        return;
    };
    bounded(180, run_failover(cmd, "session moved")).await;
}

/// The Java client over TLS with a client certificate (Netty, PEM stores): its session is
/// `x509:<subject DN>`, and x509 ACLs work for it (ZooKeeper's X509AuthenticationProvider).
#[tokio::test]
async fn java_client_over_mutual_tls() {
    use tests::certs::TestCa;
    let ca = TestCa::new("compat CA");
    let server_cert = ca.issue("server", "localhost", "Example");
    let app = ca.issue("app", "java-app", "Example");
    // The Java PEM key store wants the key and the chain in one file.
    let store = ca.dir().join("app-store.pem");
    let mut pem = std::fs::read(&app.key).expect("key");
    pem.extend(std::fs::read(&app.cert).expect("cert"));
    std::fs::write(&store, pem).expect("write store");
    let props = vec![
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_string(),
        "-Dzookeeper.client.secure=true".to_string(),
        format!("-Dzookeeper.ssl.keyStore.location={}", store.display()),
        "-Dzookeeper.ssl.keyStore.type=PEM".to_string(),
        format!("-Dzookeeper.ssl.trustStore.location={}", ca.ca.display()),
        "-Dzookeeper.ssl.trustStore.type=PEM".to_string(),
    ];
    let Some(cmd) = java_command("TlsCheck.java", &props) else {
        return;
    };
    bounded(180, async {
        init_tracing();
        let s = TestServer::start_with(|c| {
            c.tick_ms = 1000;
            c.tls.cert = Some(server_cert.cert.clone());
            c.tls.key = Some(server_cert.key.clone());
            c.tls.ca = Some(ca.ca.clone());
            c.tls.client_auth = zk_server::tls::ClientAuth::Need;
        })
        .await
        .expect("start TLS server");
        let mut cmd = cmd;
        cmd.arg(s.connect_string());
        run_check(cmd, "CN=java-app,O=Example", "java tls compat: ok").await;
    })
    .await;
}
