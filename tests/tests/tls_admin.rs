//! TLS on the admin HTTP port (`--admin-tls`: plaintext refused unless allowed, client
//! certificates when required) and certificate reload without a restart (a rotated
//! certificate is served to new connections while open ones keep going; a corrupt
//! file is rejected and the previous certificate stays in use; with polling off, SIGHUP
//! reloads).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tests::certs::{CertFiles, TestCa};
use tests::{bounded, eventually, init_tracing};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, pki_types};
use zk_client::{Client, CreateOptions, TlsOptions};
use zk_server::testing::TestServer;
use zk_server::tls::ClientAuth;

/// A single server with TLS on the client port and the admin port.
async fn admin_tls_server(
    ca: &TestCa,
    server: &CertFiles,
    auth: ClientAuth,
    allow_plaintext: bool,
) -> TestServer {
    init_tracing();
    TestServer::start_with(|c| {
        c.tls.cert = Some(server.cert.clone());
        c.tls.key = Some(server.key.clone());
        c.tls.ca = Some(ca.ca.clone());
        c.tls.admin = true;
        c.tls.admin_client_auth = auth;
        c.tls.admin_allow_plaintext = allow_plaintext;
        c.tls.reload_interval_ms = 100;
    })
    .await
    .expect("start TLS server")
}

fn admin_addr(s: &TestServer) -> String {
    s.handle().expect("running").admin_addr().to_string()
}

fn read_certs(path: &Path) -> Vec<pki_types::CertificateDer<'static>> {
    use pki_types::pem::PemObject;
    pki_types::CertificateDer::pem_file_iter(path)
        .expect("pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certs")
}

/// A TLS connection to `addr` trusting `ca`, presenting `client` if given.
async fn tls_to(
    addr: &str,
    ca: &Path,
    client: Option<&CertFiles>,
) -> std::io::Result<TlsStream<TcpStream>> {
    use pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(ca) {
        roots.add(c).expect("add root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(f) => builder
            .with_client_auth_cert(
                read_certs(&f.cert),
                pki_types::PrivateKeyDer::from_pem_file(&f.key).expect("key"),
            )
            .expect("client auth"),
    };
    let tcp = TcpStream::connect(addr).await?;
    let name = pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    // TLS 1.3: a refused client certificate shows on the first read, not the handshake.
    tls.flush().await?;
    Ok(tls)
}

/// The certificate the server presented on `tls`.
fn served_cert(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .expect("server certificate")
}

/// One HTTP/1.1 request on a kept-alive connection; the status line and body, or
/// None if the server closed the connection or the answer did not come.
async fn get<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, path: &str) -> Option<(String, String)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.lines().next().unwrap_or_default().to_string();
                return Some((status, body.to_string()));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn admin_port_over_tls_refuses_plaintext_and_serves_health_to_a_ca_client() {
    bounded(60, async {
        let ca = TestCa::new("zk test CA");
        let server = ca.issue("server", "zk-server", "Example");
        let s = admin_tls_server(&ca, &server, ClientAuth::None, false).await;
        let addr = admin_addr(&s);

        let mut plain = TcpStream::connect(&addr).await.expect("tcp");
        assert_eq!(
            get(&mut plain, "/health").await,
            None,
            "plain HTTP answered on a TLS admin port"
        );

        let mut tls = tls_to(&addr, &ca.ca, None).await.expect("TLS to admin");
        let (status, body) = get(&mut tls, "/health").await.expect("answer");
        assert!(status.contains("200"), "{status} {body}");
        assert!(body.starts_with("ok"), "{body}");
        let (status, body) = get(&mut tls, "/metrics").await.expect("answer");
        assert!(status.contains("200"), "{status}");
        assert!(body.contains("zk_tls_reloads_total 0"), "{body}");

        // A client that does not trust this CA does not get through.
        let other = TestCa::new("someone else");
        assert!(tls_to(&addr, &other.ca, None).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn admin_port_client_certificates_and_port_unification() {
    bounded(60, async {
        let ca = TestCa::new("zk test CA");
        let server = ca.issue("server", "zk-server", "Example");
        let operator = ca.issue("operator", "ops", "Example");
        let s = admin_tls_server(&ca, &server, ClientAuth::Need, true).await;
        let addr = admin_addr(&s);

        // Plain HTTP is allowed here (port unification).
        let mut plain = TcpStream::connect(&addr).await.expect("tcp");
        let (status, _) = get(&mut plain, "/health").await.expect("plain answer");
        assert!(status.contains("200"), "{status}");

        // TLS without a client certificate: refused.
        let refused = match tls_to(&addr, &ca.ca, None).await {
            Err(_) => true,
            Ok(mut t) => get(&mut t, "/health").await.is_none(),
        };
        assert!(refused, "admin TLS without a client certificate answered");

        // With one from the CA: served.
        let mut t = tls_to(&addr, &ca.ca, Some(&operator))
            .await
            .expect("mutual TLS");
        let (status, _) = get(&mut t, "/health").await.expect("answer");
        assert!(status.contains("200"), "{status}");

        // A certificate from another CA: refused.
        let rogue_ca = TestCa::new("rogue CA");
        let rogue = rogue_ca.issue("rogue", "ops", "Example");
        let refused = match tls_to(&addr, &ca.ca, Some(&rogue)).await {
            Err(_) => true,
            Ok(mut t) => get(&mut t, "/health").await.is_none(),
        };
        assert!(refused, "a certificate from another CA was accepted");
    })
    .await;
}

/// Reload counters from `/metrics` over an admin TLS connection: (reloads, failures).
async fn reload_counts(addr: &str, ca: &Path) -> (u64, u64) {
    let Ok(mut t) = tls_to(addr, ca, None).await else {
        return (0, 0);
    };
    let Some((_, body)) = get(&mut t, "/metrics").await else {
        return (0, 0);
    };
    let value = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        value("zk_tls_reloads_total "),
        value("zk_tls_reload_failures_total "),
    )
}

/// Replaces `dst`'s certificate and key by `src`'s, each by an atomic rename.
fn install(src: &CertFiles, dst: &CertFiles) {
    for (from, to) in [(&src.key, &dst.key), (&src.cert, &dst.cert)] {
        let tmp = to.with_extension("tmp");
        std::fs::copy(from, &tmp).expect("copy");
        std::fs::rename(&tmp, to).expect("rename");
    }
}

#[tokio::test]
async fn rotated_certificate_is_served_to_new_connections_and_a_corrupt_one_is_rejected() {
    bounded(90, async {
        let ca = TestCa::new("zk test CA");
        let live = ca.issue("live", "zk-server", "Example");
        let first = read_certs(&live.cert)[0].to_vec();
        let s = admin_tls_server(&ca, &live, ClientAuth::None, false).await;
        let admin = admin_addr(&s);
        let client_port = s.connect_string();

        // Connections opened before the rotation.
        let mut kept = tls_to(&admin, &ca.ca, None).await.expect("admin TLS");
        assert_eq!(served_cert(&kept), first);
        let session = Client::builder()
            .servers(&client_port)
            .tls(TlsOptions::from_ca_file(&ca.ca).expect("ca"))
            .connect()
            .await
            .expect("TLS session");
        session
            .create("/before", "", &CreateOptions::persistent())
            .await
            .expect("create");

        // Rotate: a new certificate (new key, new subject) written over the files.
        let next = ca.issue("next", "zk-server-rotated", "Example");
        let rotated = read_certs(&next.cert)[0].to_vec();
        assert_ne!(rotated, first);
        install(&next, &live);
        for addr in [&admin, &client_port] {
            let (addr, ca_path, want) = (addr.clone(), ca.ca.clone(), rotated.clone());
            eventually(
                30,
                "a new connection gets the rotated certificate",
                move || {
                    let (addr, ca_path, want) = (addr.clone(), ca_path.clone(), want.clone());
                    async move {
                        match tls_to(&addr, &ca_path, None).await {
                            Ok(t) => served_cert(&t) == want,
                            Err(_) => false,
                        }
                    }
                },
            )
            .await;
        }
        // The connections opened before keep working.
        let (status, _) = get(&mut kept, "/health").await.expect("kept connection");
        assert!(status.contains("200"), "{status}");
        assert_eq!(served_cert(&kept), first);
        session
            .create("/after-rotation", "", &CreateOptions::persistent())
            .await
            .expect("the open session still works");
        let (reloads, failures_before) = reload_counts(&admin, &ca.ca).await;
        assert!(reloads >= 1, "reloads {reloads}");

        // A corrupt certificate: rejected, the rotated one stays in use.
        std::fs::write(&live.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").expect("write");
        let ca_path = ca.ca.clone();
        let admin2 = admin.clone();
        eventually(30, "the corrupt certificate is rejected", move || {
            let (admin, ca_path) = (admin2.clone(), ca_path.clone());
            async move { reload_counts(&admin, &ca_path).await.1 > failures_before }
        })
        .await;
        for addr in [&admin, &client_port] {
            let t = tls_to(addr, &ca.ca, None).await.expect("still serving TLS");
            assert_eq!(served_cert(&t), rotated, "{addr}");
        }
        // A certificate whose key does not match: rejected too.
        let (_, failures) = reload_counts(&admin, &ca.ca).await;
        let other = ca.issue("other", "zk-server-other", "Example");
        std::fs::copy(&other.cert, &live.cert).expect("copy");
        let ca_path = ca.ca.clone();
        let admin2 = admin.clone();
        eventually(30, "the mismatched key is rejected", move || {
            let (admin, ca_path) = (admin2.clone(), ca_path.clone());
            async move { reload_counts(&admin, &ca_path).await.1 > failures }
        })
        .await;
        let t = tls_to(&client_port, &ca.ca, None).await.expect("TLS");
        assert_eq!(served_cert(&t), rotated);
        session.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_the_certificate_when_polling_is_off() {
    bounded(60, async {
        init_tracing();
        let ca = TestCa::new("zk test CA");
        let live = ca.issue("live", "zk-server", "Example");
        let s = TestServer::start_with(|c| {
            c.tls.cert = Some(live.cert.clone());
            c.tls.key = Some(live.key.clone());
            c.tls.reload_interval_ms = 0;
        })
        .await
        .expect("start TLS server");
        let addr = s.connect_string();
        let next = ca.issue("next", "zk-server-rotated", "Example");
        let rotated = read_certs(&next.cert)[0].to_vec();
        install(&next, &live);
        let t = tls_to(&addr, &ca.ca, None).await.expect("TLS");
        assert_ne!(served_cert(&t), rotated, "reloaded without a SIGHUP");

        let hup = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(hup.success());
        let ca_path = ca.ca.clone();
        eventually(30, "SIGHUP loads the rotated certificate", move || {
            let (addr, ca_path, want) = (addr.clone(), ca_path.clone(), rotated.clone());
            async move {
                match tls_to(&addr, &ca_path, None).await {
                    Ok(t) => served_cert(&t) == want,
                    Err(_) => false,
                }
            }
        })
        .await;
    })
    .await;
}
