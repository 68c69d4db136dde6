//! TLS on the client port, with certificates generated per test (`rcgen`): native
//! sessions over TLS, plaintext refused (or allowed with `allow_plaintext`), mutual
//! TLS required (a client without a certificate is refused), the `x509` ACL scheme,
//! and Apache ZooKeeper's protocol and four-letter words inside TLS on the same port.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tests::certs::{CertFiles, TestCa};
use tests::{bounded, init_tracing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types};
use zk_client::{Acl, Client, Code, CreateOptions, Perms, TlsOptions};
use zk_server::testing::TestServer;
use zk_server::tls::ClientAuth;

async fn tls_server(ca: &TestCa, auth: ClientAuth, allow_plaintext: bool) -> TestServer {
    init_tracing();
    let server = ca.issue("server", "zk-server", "Example");
    TestServer::start_with(|c| {
        c.tls.cert = Some(server.cert.clone());
        c.tls.key = Some(server.key.clone());
        c.tls.ca = Some(ca.ca.clone());
        c.tls.client_auth = auth;
        c.tls.allow_plaintext = allow_plaintext;
    })
    .await
    .expect("start TLS server")
}

async fn connect(s: &TestServer, tls: Option<TlsOptions>) -> zk_client::Result<Client> {
    let mut b = Client::builder()
        .servers(&s.connect_string())
        .connect_timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        b = b.tls(tls);
    }
    b.connect().await
}

fn with_cert(ca: &TestCa, files: &CertFiles) -> TlsOptions {
    TlsOptions::from_ca_file(&ca.ca)
        .expect("ca")
        .client_cert_files(&files.cert, &files.key)
        .expect("client cert")
}

/// A raw TLS connection to the client port (for the protocols our SDK does not speak).
async fn raw_tls(
    s: &TestServer,
    ca: &Path,
    client: Option<&CertFiles>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(f) => {
            let certs = pki_types::CertificateDer::pem_file_iter(&f.cert)
                .expect("cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("certs");
            let key = pki_types::PrivateKeyDer::from_pem_file(&f.key).expect("key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        }
    };
    let tcp = TcpStream::connect(s.connect_string()).await?;
    let name = pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

#[tokio::test]
async fn native_sessions_over_tls_and_plaintext_refused() {
    bounded(60, async {
        let ca = TestCa::new("zk test CA");
        let s = tls_server(&ca, ClientAuth::None, false).await;
        let tls = TlsOptions::from_ca_file(&ca.ca).expect("ca");
        let c = connect(&s, Some(tls.clone())).await.expect("TLS session");
        c.create("/t", "over tls", &CreateOptions::persistent())
            .await
            .expect("create");
        assert_eq!(c.get_data("/t").await.expect("get").0, "over tls");

        // Plaintext is refused on a TLS client port.
        assert!(
            connect(&s, None).await.is_err(),
            "plaintext must be refused"
        );
        let mut plain = TcpStream::connect(s.connect_string()).await.expect("tcp");
        plain.write_all(b"ruok").await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
        assert!(answer.is_empty(), "plaintext four-letter word answered");

        // A server certificate from another CA is not trusted.
        let other = TestCa::new("someone else");
        let untrusted = TlsOptions::from_ca_file(&other.ca).expect("ca");
        assert!(connect(&s, Some(untrusted)).await.is_err());

        // Four-letter words inside TLS.
        let mut t = raw_tls(&s, &ca.ca, None).await.expect("tls");
        t.write_all(b"ruok").await.expect("write");
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), t.read_to_string(&mut answer)).await;
        assert_eq!(answer, "imok");
        c.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn allow_plaintext_serves_both() {
    bounded(60, async {
        let ca = TestCa::new("zk test CA");
        let s = tls_server(&ca, ClientAuth::None, true).await;
        let plain = connect(&s, None).await.expect("plaintext session");
        plain
            .create("/p", "", &CreateOptions::persistent())
            .await
            .expect("create");
        let tls = TlsOptions::from_ca_file(&ca.ca).expect("ca");
        let secure = connect(&s, Some(tls)).await.expect("TLS session");
        assert!(secure.exists("/p").await.expect("exists").is_some());
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_required_and_the_x509_scheme() {
    bounded(60, async {
        let ca = TestCa::new("zk test CA");
        let s = tls_server(&ca, ClientAuth::Need, false).await;
        let app_files = ca.issue("app", "app", "Example");
        let other_files = ca.issue("other", "other", "Example");

        // No client certificate: refused at the handshake.
        let no_cert = TlsOptions::from_ca_file(&ca.ca).expect("ca");
        assert!(connect(&s, Some(no_cert)).await.is_err());
        // A client certificate from another CA: refused.
        let rogue_ca = TestCa::new("rogue");
        let rogue = rogue_ca.issue("rogue", "app", "Example");
        let rogue_opts = TlsOptions::from_ca_file(&ca.ca)
            .expect("ca")
            .client_cert_files(&rogue.cert, &rogue.key)
            .expect("cert");
        assert!(connect(&s, Some(rogue_opts)).await.is_err());

        let app = connect(&s, Some(with_cert(&ca, &app_files)))
            .await
            .expect("app session");
        let other = connect(&s, Some(with_cert(&ca, &other_files)))
            .await
            .expect("other session");
        // The certificate's subject is the session's x509 identity (RFC 2253, as
        // ZooKeeper's X509AuthenticationProvider).
        let app_id = "CN=app,O=Example";
        let only_app = vec![Acl::new(Perms::ALL, "x509", app_id)];
        app.create(
            "/x",
            "mine",
            &CreateOptions::persistent().with_acl(only_app.clone()),
        )
        .await
        .expect("create");
        assert_eq!(app.get_data("/x").await.expect("read").0, "mine");
        let code = other.get_data("/x").await.expect_err("other cert").code();
        assert_eq!(code, Code::NoAuth);
        // The `auth` scheme expands to the x509 identity.
        app.create(
            "/y",
            "",
            &CreateOptions::persistent().with_acl(vec![Acl::new(Perms::ALL, "auth", "")]),
        )
        .await
        .expect("auth scheme");
        assert_eq!(app.get_acl("/y").await.expect("acl").0, only_app);

        // Apache ZooKeeper's protocol inside TLS, with the same x509 identity: a jute
        // ConnectRequest, then getData of /x (opcode 4).
        let mut t = raw_tls(&s, &ca.ca, Some(&app_files)).await.expect("tls");
        assert_eq!(
            jute_get_data(&mut t, "/x").await,
            0,
            "x509 identity on jute"
        );
        let mut t = raw_tls(&s, &ca.ca, Some(&other_files)).await.expect("tls");
        assert_eq!(
            jute_get_data(&mut t, "/x").await,
            Code::NoAuth.as_i32(),
            "other identity on jute"
        );
        assert!(
            raw_tls(&s, &ca.ca, None).await.is_err()
                || jute_connect(&mut raw_tls(&s, &ca.ca, None).await.expect("tls"))
                    .await
                    .is_none(),
            "no certificate, no session"
        );
    })
    .await;
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

async fn read_frame<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// A jute ConnectRequest for a new session; the session id, or None if refused.
async fn jute_connect<S: AsyncReadExt + AsyncWriteExt + Unpin>(s: &mut S) -> Option<i64> {
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    body.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    body.extend_from_slice(&4000i32.to_be_bytes()); // timeOut
    body.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    body.extend_from_slice(&16i32.to_be_bytes()); // passwd
    body.extend_from_slice(&[0u8; 16]);
    s.write_all(&frame(&body)).await.ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(10), read_frame(s))
        .await
        .ok()??;
    let session = i64::from_be_bytes(resp.get(8..16)?.try_into().ok()?);
    (session != 0).then_some(session)
}

/// Connects, sends getData(path), returns the reply's error code.
async fn jute_get_data<S: AsyncReadExt + AsyncWriteExt + Unpin>(s: &mut S, path: &str) -> i32 {
    jute_connect(s).await.expect("jute session");
    let mut body = Vec::new();
    body.extend_from_slice(&1i32.to_be_bytes()); // xid
    body.extend_from_slice(&4i32.to_be_bytes()); // getData
    body.extend_from_slice(&(path.len() as i32).to_be_bytes());
    body.extend_from_slice(path.as_bytes());
    body.push(0); // watch
    s.write_all(&frame(&body)).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(10), read_frame(s))
        .await
        .expect("reply in time")
        .expect("reply");
    assert_eq!(reply.get(0..4), Some(&1i32.to_be_bytes()[..]), "xid");
    i32::from_be_bytes(reply[12..16].try_into().expect("err"))
}
