//! Peer authentication (the CVE-2023-44981 class: an unauthenticated process must not
//! join the quorum or inject raft messages). A 3-node ensemble with a shared peer
//! secret refuses a rogue's Vote (with a far higher term), AppendEntries and
//! membership change, and is unaffected: same leader, same term, same members, and it
//! still commits. A 3-node ensemble with peer mutual TLS works, and a rogue without a
//! certificate from the peer CA does not get a single RPC through. With
//! `peer_verify_id`, a valid certificate for server 2 cannot vote, lead or re-register
//! as server 3, and a server that dials server 3 and reaches server 2 refuses it.

use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{LogId, Vote};
use tests::certs::TestCa;
use tests::{bounded, eventually, init_tracing};
use zk_client::{Client, CreateOptions};
use zk_proto::peer::{peer_client::PeerClient, PeerMessage};
use zk_server::raft::rpc::{MembershipChange, PeerReply, PeerRequest};
use zk_server::testing::TestCluster;

const SECRET: &str = "correct horse battery staple";

/// The rogue's messages: a vote far in the future, a heartbeat as a made-up leader,
/// and a request to add itself as a voter.
fn rogue_requests(term: u64) -> Vec<PeerRequest> {
    let vote = Vote::new(term + 100, 99);
    vec![
        PeerRequest::Vote(VoteRequest::new(
            vote,
            Some(LogId::new(
                openraft::CommittedLeaderId::new(term + 100, 99),
                1_000_000,
            )),
        )),
        PeerRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(term + 100, 99),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        }),
        PeerRequest::Membership(MembershipChange::AddVoter {
            id: 99,
            peer_addr: "127.0.0.1:1".into(),
        }),
    ]
}

/// Sends `req` to the peer port at `addr` with an optional secret header; the gRPC
/// status code (Ok if the call went through).
async fn send(addr: &str, req: &PeerRequest, secret: Option<&str>) -> tonic::Code {
    let mut client = match PeerClient::connect(format!("http://{addr}")).await {
        Ok(c) => c,
        Err(_) => return tonic::Code::Unavailable,
    };
    let mut r = tonic::Request::new(PeerMessage {
        payload: postcard::to_allocvec(req).expect("encode").into(),
    });
    if let Some(s) = secret {
        r.metadata_mut()
            .insert("x-zk-peer-secret", s.parse().expect("header"));
    }
    match tokio::time::timeout(Duration::from_secs(5), client.call(r)).await {
        Ok(Ok(_)) => tonic::Code::Ok,
        Ok(Err(status)) => status.code(),
        Err(_) => tonic::Code::DeadlineExceeded,
    }
}

fn term_of(c: &TestCluster, i: usize) -> u64 {
    let h = c.handle(i).expect("running");
    let m = h.pipeline().raft.metrics().borrow().clone();
    m.current_term
}

/// A write through every server in turn: the followers' writes travel to the leader on
/// the authenticated `Forward` stream, so peer authentication must let them through.
async fn write_ok(c: &TestCluster, path: &str) {
    for i in 0..c.len() {
        let client = Client::builder()
            .servers(&c.client_addr(i))
            .connect()
            .await
            .expect("connect");
        client
            .create(&format!("{path}-{i}"), "", &CreateOptions::persistent())
            .await
            .unwrap_or_else(|e| panic!("server {i}: the ensemble still commits: {e}"));
        client.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_secret_refuses_a_rogue_and_the_ensemble_is_unaffected() {
    bounded(90, async {
        init_tracing();
        let c = TestCluster::start_with(3, 0, |cfg| {
            cfg.tls.peer_secret = Some(SECRET.to_string());
        })
        .await
        .expect("cluster with a peer secret");
        let leader = c
            .wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        write_ok(&c, "/before").await;
        let terms: Vec<u64> = (0..3).map(|i| term_of(&c, i)).collect();

        for (i, term) in terms.iter().enumerate() {
            for req in rogue_requests(*term) {
                assert_eq!(
                    send(&c.peer_addr(i), &req, None).await,
                    tonic::Code::Unauthenticated,
                    "node {i} accepted {req:?} without the secret"
                );
                assert_eq!(
                    send(&c.peer_addr(i), &req, Some("a wrong secret, same length!!")).await,
                    tonic::Code::Unauthenticated,
                    "node {i} accepted a wrong secret"
                );
            }
        }
        // A status query with the secret goes through: the refusal above is the
        // secret's doing, not a broken port.
        assert_eq!(
            send(&c.peer_addr(leader), &PeerRequest::Status, Some(SECRET)).await,
            tonic::Code::Ok
        );

        assert_eq!(c.leader(), Some(leader), "leadership moved");
        let after: Vec<u64> = (0..3).map(|i| term_of(&c, i)).collect();
        assert_eq!(after, terms, "a rogue vote changed a term");
        write_ok(&c, "/after").await;
        let client = Client::connect(&c.connect_string()).await.expect("connect");
        let status = client.cluster_status().await.expect("status");
        assert_eq!(status.members.len(), 3, "{status:?}");
        assert!(status.members.iter().all(|m| m.id != 99), "{status:?}");
        client.close().await.expect("close");
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_mutual_tls_ensemble_refuses_peers_without_a_certificate() {
    bounded(90, async {
        init_tracing();
        let ca = TestCa::new("peer CA");
        let node = ca.issue("peer", "zk-peer", "Example");
        let c = TestCluster::start_with(3, 0, |cfg| {
            cfg.tls.peer_cert = Some(node.cert.clone());
            cfg.tls.peer_key = Some(node.key.clone());
            cfg.tls.peer_ca = Some(ca.ca.clone());
        })
        .await
        .expect("cluster with peer mTLS");
        let leader = c
            .wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        write_ok(&c, "/replicated").await;
        let terms: Vec<u64> = (0..3).map(|i| term_of(&c, i)).collect();

        // Plaintext gRPC to a TLS peer port: no call gets through.
        for (i, term) in terms.iter().enumerate() {
            for req in rogue_requests(*term) {
                let code = send(&c.peer_addr(i), &req, None).await;
                assert_ne!(
                    code,
                    tonic::Code::Ok,
                    "node {i} accepted {req:?} in plaintext"
                );
            }
        }
        // TLS with a certificate from another CA: refused at the handshake.
        let rogue_ca = TestCa::new("rogue CA");
        let rogue = rogue_ca.issue("rogue", "zk-peer", "Example");
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(
                std::fs::read(&ca.ca).expect("ca"),
            ))
            .identity(tonic::transport::Identity::from_pem(
                std::fs::read(&rogue.cert).expect("cert"),
                std::fs::read(&rogue.key).expect("key"),
            ))
            .domain_name("localhost");
        let channel =
            tonic::transport::Endpoint::from_shared(format!("https://{}", c.peer_addr(leader)))
                .expect("uri")
                .tls_config(tls)
                .expect("tls")
                .connect_timeout(Duration::from_secs(2));
        let outcome = match channel.connect().await {
            Err(_) => tonic::Code::Unavailable,
            Ok(ch) => {
                let req = PeerMessage {
                    payload: postcard::to_allocvec(&PeerRequest::Status)
                        .expect("encode")
                        .into(),
                };
                match PeerClient::new(ch).call(req).await {
                    Ok(_) => tonic::Code::Ok,
                    Err(s) => s.code(),
                }
            }
        };
        assert_ne!(
            outcome,
            tonic::Code::Ok,
            "a certificate from another CA got in"
        );

        assert_eq!(c.leader(), Some(leader));
        let after: Vec<u64> = (0..3).map(|i| term_of(&c, i)).collect();
        assert_eq!(after, terms);
        write_ok(&c, "/still-replicated").await;
        c.shutdown().await;
    })
    .await;
}

/// Sends `req` over mutual TLS with `cert` (trusting `ca`) to the peer port at `addr`.
async fn send_tls(
    addr: &str,
    ca: &std::path::Path,
    cert: &tests::certs::CertFiles,
    req: &PeerRequest,
) -> tonic::Code {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(ca).expect("ca"),
        ))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(&cert.cert).expect("cert"),
            std::fs::read(&cert.key).expect("key"),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(2));
    let Ok(ch) = channel.connect().await else {
        return tonic::Code::Unavailable;
    };
    let req = PeerMessage {
        payload: postcard::to_allocvec(req).expect("encode").into(),
    };
    match tokio::time::timeout(Duration::from_secs(5), PeerClient::new(ch).call(req)).await {
        Ok(Ok(_)) => tonic::Code::Ok,
        Ok(Err(s)) => s.code(),
        Err(_) => tonic::Code::DeadlineExceeded,
    }
}

/// Messages that claim to come from server `id`: a vote for it far in the future, a
/// heartbeat with it as leader, and moving it to another address.
fn requests_as(id: u64, term: u64) -> Vec<PeerRequest> {
    vec![
        PeerRequest::Vote(VoteRequest::new(
            Vote::new(term + 100, id),
            Some(LogId::new(
                openraft::CommittedLeaderId::new(term + 100, id),
                1_000_000,
            )),
        )),
        PeerRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(term + 100, id),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        }),
        PeerRequest::Membership(MembershipChange::AddVoter {
            id,
            peer_addr: "127.0.0.1:1".into(),
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_certificates_are_tied_to_server_ids() {
    bounded(120, async {
        init_tracing();
        let ca = TestCa::new("peer CA");
        let mut plan = TestCluster::plan(3, 0, &|_| {}).expect("plan");
        for cfg in &mut plan.configs {
            let id = cfg.node_id;
            let files = ca.issue(&format!("node{id}"), &format!("server.{id}"), "Example");
            cfg.tls.peer_cert = Some(files.cert);
            cfg.tls.peer_key = Some(files.key);
            cfg.tls.peer_ca = Some(ca.ca.clone());
            cfg.tls.peer_verify_id = true;
        }
        let c = plan
            .start()
            .await
            .expect("cluster with per-server certificates");
        let leader = c
            .wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        write_ok(&c, "/before").await;
        let terms: Vec<u64> = (0..3).map(|i| term_of(&c, i)).collect();

        // A valid certificate of the ensemble's CA for server 2, used to act as server 3.
        let as2 = ca.issue("impostor", "server.2", "Example");
        for (i, term) in terms.iter().enumerate() {
            for req in requests_as(3, *term) {
                assert_eq!(
                    send_tls(&c.peer_addr(i), &ca.ca, &as2, &req).await,
                    tonic::Code::PermissionDenied,
                    "node {i} accepted {req:?} as server 3 from server 2's certificate"
                );
            }
        }
        // The certificate itself is good: a status query goes through.
        assert_eq!(
            send_tls(&c.peer_addr(leader), &ca.ca, &as2, &PeerRequest::Status).await,
            tonic::Code::Ok
        );
        // A certificate of the CA that names no server gets nothing through.
        let anonymous = ca.issue("anonymous", "zk-peer", "Example");
        assert_eq!(
            send_tls(
                &c.peer_addr(leader),
                &ca.ca,
                &anonymous,
                &PeerRequest::Status
            )
            .await,
            tonic::Code::PermissionDenied
        );

        assert_eq!(c.leader(), Some(leader), "leadership moved");
        let after: Vec<u64> = (0..3).map(|i| term_of(&c, i)).collect();
        assert_eq!(after, terms, "an impostor's vote changed a term");
        write_ok(&c, "/after").await;
        let client = Client::connect(&c.connect_string()).await.expect("connect");
        let status = client.cluster_status().await.expect("status");
        assert_eq!(status.members.len(), 3, "{status:?}");
        assert!(
            status.members.iter().all(|m| !m.peer_addr.ends_with(":1")),
            "{status:?}"
        );
        client.close().await.expect("close");
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialler_refuses_a_peer_whose_certificate_names_another_server() {
    bounded(120, async {
        init_tracing();
        let ca = TestCa::new("peer CA");
        let mut plan = TestCluster::plan(3, 0, &|_| {}).expect("plan");
        for cfg in &mut plan.configs {
            let id = cfg.node_id;
            let files = ca.issue(&format!("node{id}"), &format!("server.{id}"), "Example");
            cfg.tls.peer_cert = Some(files.cert);
            cfg.tls.peer_key = Some(files.key);
            cfg.tls.peer_ca = Some(ca.ca.clone());
            cfg.tls.peer_verify_id = true;
        }
        // Server 1 reaches server 2 when it dials server 3's address (a misrouted or
        // stolen address): server 2's certificate is valid, but it is not server 3's.
        let (addr2, addr3) = (
            plan.configs[1].peer_bind_addr(),
            plan.configs[2].peer_bind_addr(),
        );
        plan.configs[0].peer_dial = [(addr3.clone(), addr2.clone())].into();
        let c = plan.start().await.expect("cluster");
        c.wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");

        // Server 1's own peer dialler (whatever the roles): at server 3's address it
        // reaches server 2, whose valid certificate names server 2, and refuses it.
        let peers = &c.handle(0).expect("server 1 runs").pipeline().peers;
        let wrong = peers
            .call(&addr3, &PeerRequest::Status, Duration::from_secs(5))
            .await;
        match &wrong {
            Err(e) => assert!(
                e.to_string().contains("server.2") || e.to_string().contains("server 2"),
                "refused for another reason: {e}"
            ),
            Ok(reply) => panic!("server 1 took server 2's answer at server 3's address: {reply:?}"),
        }
        // Server 2 at its own address is fine.
        assert!(matches!(
            peers
                .call(&addr2, &PeerRequest::Status, Duration::from_secs(5))
                .await,
            Ok(PeerReply::Status(s)) if s.id == 2
        ));

        // Servers 2 and 3 reach each other and server 1 as before: the ensemble commits.
        let on3 = Client::builder()
            .servers(&c.client_addr(2))
            .connect()
            .await
            .expect("connect to server 3");
        eventually(30, "a write through server 3", || async {
            matches!(
                tokio::time::timeout(
                    Duration::from_secs(2),
                    on3.create("/still-works", "", &CreateOptions::persistent())
                )
                .await,
                Ok(Ok(_)) | Ok(Err(zk_client::Error::NodeExists { .. }))
            )
        })
        .await;
        on3.close().await.expect("close");
        c.shutdown().await;
    })
    .await;
}
