//! Per-client limits (`zk_server::limits`), each through a real client: the limited
//! client gets a clear error or loses only its own connection, and another session on
//! the same server carries on unaffected.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use tests::raw;
use tests::{bounded, eventually, init_tracing, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use zk_client::{Client, CreateOptions, Error};
use zk_proto::pb;
use zk_server::limits::Limits;
use zk_server::zkwire::conn::read_frame;
use zk_server::zkwire::jute::{ConnectRequest, Reader, Writer};
use zk_server::zkwire::translate::op;
use zookeeper_client as zk;

async fn server_with(f: impl FnOnce(&mut Limits)) -> TestServer {
    init_tracing();
    TestServer::start_with(|c| {
        // Session timeouts up to 20 s: a cut-off session must outlive the test's checks.
        c.tick_ms = 1000;
        f(&mut c.limits)
    })
    .await
    .expect("start test server")
}

fn limits(s: &TestServer) -> &zk_server::admin::metrics::LimitCounters {
    &s.handle()
        .expect("running")
        .pipeline()
        .shared
        .metrics
        .limits
}

/// Sends `ruok` from `local` (a loopback address) and returns the answer ("" if the
/// server closed the connection without one).
async fn ruok_from(local: [u8; 4], server: &str) -> String {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind((std::net::Ipv4Addr::from(local), 0).into())
        .expect("bind");
    let mut s = socket
        .connect(server.parse().expect("addr"))
        .await
        .expect("connect");
    let _ = s.write_all(b"ruok").await;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer).await;
    answer
}

/// A ZooKeeper-protocol session on a raw socket: (socket, session id, password).
async fn jute_connect(server: &str, session_id: i64, password: Bytes) -> (TcpStream, i64, Bytes) {
    let mut s = TcpStream::connect(server).await.expect("connect");
    let body = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id,
        password,
        read_only: Some(false),
    }
    .encode(); // framed: length prefix included
    s.write_all(&body).await.expect("write");
    let frame = read_frame(&mut s, 1 << 20)
        .await
        .expect("read")
        .expect("a ConnectResponse");
    let mut r = Reader::new(&frame);
    let _protocol = r.int("protocolVersion").expect("protocol");
    let timeout = r.int("timeOut").expect("timeout");
    let id = r.long("sessionId").expect("session");
    let pw = r.buffer("passwd").expect("password");
    assert!(timeout > 0, "session refused");
    (s, id, pw)
}

fn get_data_frame(xid: i32, path: &str) -> Vec<u8> {
    let mut w = Writer::framed();
    w.int(xid).int(op::GET_DATA).ustring(path).boolean(false);
    w.finish_frame().to_vec()
}

#[tokio::test]
async fn connections_per_ip_are_limited_and_other_ips_are_not_affected() {
    bounded(60, async {
        let s = server_with(|l| l.max_client_cnxns = 3).await;
        let addr = s.connect_string();
        // Three connections from 127.0.0.1, two protocols.
        let a = Client::connect(&addr).await.expect("native 1");
        let b = Client::connect(&addr).await.expect("native 2");
        let (_c, _, _) = jute_connect(&addr, 0, Bytes::from_static(&[0; 16])).await;

        // A fourth from the same IP is closed at once, whatever it speaks.
        assert_eq!(
            ruok_from([127, 0, 0, 1], &addr).await,
            "",
            "closed unanswered"
        );
        let mut d = TcpStream::connect(&addr).await.expect("tcp connect");
        let mut buf = [0u8; 16];
        let n = d.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "the server closes the fourth connection");
        assert!(limits(&s).rejected_connections.load(Relaxed) >= 2);

        // Another client IP is not affected, nor are the sessions already open.
        assert_eq!(ruok_from([127, 0, 0, 2], &addr).await, "imok");
        a.create("/still-works", "x", &CreateOptions::persistent())
            .await
            .expect("an open session goes on");
        b.get_data("/still-works").await.expect("read");

        // Once one closes, its slot is free again.
        a.close().await.expect("close");
        eventually(10, "a slot is released", || async {
            ruok_from([127, 0, 0, 1], &addr).await == "imok"
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn outstanding_requests_are_throttled_not_refused() {
    bounded(60, async {
        let s = server_with(|l| l.max_outstanding_requests = 2).await;
        let a = Client::connect(&s.connect_string()).await.expect("a");
        let b = Client::connect(&s.connect_string()).await.expect("b");
        a.create("/q", "", &CreateOptions::persistent())
            .await
            .expect("parent");
        // 200 writes pipelined on one session: all succeed, in call order.
        let calls: Vec<_> = (0..200)
            .map(|i| {
                a.create(
                    "/q/n-",
                    format!("{i}"),
                    &CreateOptions::persistent().sequential(true),
                )
            })
            .collect();
        let other = b.create("/b", "", &CreateOptions::persistent());
        let paths: Vec<String> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.expect("a throttled write still succeeds").0)
            .collect();
        let want: Vec<String> = (0..200).map(|i| format!("/q/n-{i:010}")).collect();
        assert_eq!(paths, want, "FIFO order kept under back-pressure");
        other.await.expect("the other session is not affected");
        assert!(
            limits(&s).throttled.load(Relaxed) > 0,
            "the server paused reading the busy connection"
        );
    })
    .await;
}

#[tokio::test]
async fn watches_per_session_are_capped_with_quota_exceeded() {
    bounded(60, async {
        let s = server_with(|l| l.max_watches_per_session = 3).await;
        let a = Client::connect(&s.connect_string()).await.expect("a");
        let b = Client::connect(&s.connect_string()).await.expect("b");
        for i in 0..5 {
            a.create(&format!("/w{i}"), "v", &CreateOptions::persistent())
                .await
                .expect("create");
        }
        let (_, _, w0) = a.get_data_and_watch("/w0").await.expect("watch 1");
        let _w1 = a.get_data_and_watch("/w1").await.expect("watch 2");
        let _w2 = a.exists_and_watch("/w2").await.expect("watch 3");
        match a.get_data_and_watch("/w3").await {
            Err(Error::QuotaExceeded { path, .. }) => assert_eq!(path, "/w3"),
            other => panic!("expected QuotaExceeded, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            a.exists_and_watch("/w4").await,
            Err(Error::QuotaExceeded { .. })
        ));
        // Reads without a watch still work; another session may watch freely.
        a.get_data("/w3").await.expect("plain read");
        let (_, _, bw) = b.get_data_and_watch("/w3").await.expect("b is not limited");
        // A fired one-shot watch frees its slot.
        b.set_data("/w0", "changed", None).await.expect("set");
        w0.await;
        let _w3 = a.get_data_and_watch("/w3").await.expect("room again");
        b.set_data("/w3", "changed", None).await.expect("set");
        bw.await;
        assert!(limits(&s).watches_refused.load(Relaxed) >= 2);

        // The same limit through Apache ZooKeeper's protocol.
        let zc = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(2))
            .connect(&s.connect_string())
            .await
            .expect("zookeeper-client");
        // Held: this crate removes a watch when its watcher is dropped.
        let mut held = Vec::new();
        for i in 0..3 {
            let (_, w) = zc
                .check_and_watch_stat(&format!("/w{i}"))
                .await
                .expect("within the limit");
            held.push(w);
        }
        assert_eq!(
            zc.get_and_watch_data("/w4").await.err(),
            Some(zk::Error::QuotaExceeded)
        );
    })
    .await;
}

#[tokio::test]
async fn a_zookeeper_client_that_stops_reading_is_disconnected_and_reattaches() {
    bounded(90, async {
        let s = server_with(|l| l.max_outbound_bytes = 256 << 10).await;
        let addr = s.connect_string();
        let other = Client::connect(&addr).await.expect("other");
        other
            .create("/big", vec![7u8; 64 << 10], &CreateOptions::persistent())
            .await
            .expect("create");

        let (mut sock, id, pw) = jute_connect(&addr, 0, Bytes::from_static(&[0; 16])).await;
        // 2000 reads of 64 KiB (125 MiB of replies), never read back meanwhile.
        const N: i32 = 2000;
        let mut reqs = Vec::new();
        for xid in 1..=N {
            reqs.extend_from_slice(&get_data_frame(xid, "/big"));
        }
        sock.write_all(&reqs).await.expect("send requests");
        eventually(30, "the server cuts the slow reader off", || async {
            limits(&s).slow_readers_closed.load(Relaxed) > 0
        })
        .await;
        // Another session is unaffected meanwhile.
        let (data, _) = other.get_data("/big").await.expect("other reads");
        assert_eq!(data.len(), 64 << 10);
        // The slow client gets what was already in flight, then the end of the stream.
        let mut replies = 0;
        while let Ok(Some(_)) = read_frame(&mut sock, 1 << 20).await {
            replies += 1;
        }
        assert!(
            replies < N,
            "the server did not buffer all {N} replies ({replies})"
        );
        // Its session survived and reattaches on a new connection.
        let (mut again, id2, _) = jute_connect(&addr, id, pw).await;
        assert_eq!(id2, id, "same session");
        again
            .write_all(&get_data_frame(1, "/big"))
            .await
            .expect("send");
        let frame = read_frame(&mut again, 1 << 20)
            .await
            .expect("read")
            .expect("a reply");
        let mut r = Reader::new(&frame);
        assert_eq!(r.int("xid").expect("xid"), 1);
        let _zxid = r.long("zxid").expect("zxid");
        assert_eq!(r.int("err").expect("err"), 0);
    })
    .await;
}

#[tokio::test]
async fn a_native_client_that_stops_reading_gets_a_clear_status() {
    bounded(90, async {
        let s = server_with(|l| l.max_outbound_bytes = 256 << 10).await;
        let addr = s.connect_string();
        let other = Client::connect(&addr).await.expect("other");
        other
            .create("/big", vec![7u8; 64 << 10], &CreateOptions::persistent())
            .await
            .expect("create");
        let connect = pb::ConnectRequest {
            session_id: 0,
            password: Bytes::new(),
            timeout_ms: 10_000,
            last_zxid_seen: 0,
        };
        let mut slow = raw::open(&addr, connect.clone())
            .await
            .expect("raw session");
        const N: i64 = 2000;
        let sender = {
            let tx = slow.tx.clone();
            tokio::spawn(async move {
                for xid in 1..=N {
                    let req = pb::ClientMessage {
                        kind: Some(pb::client_message::Kind::Request(pb::Request {
                            xid,
                            op: Some(pb::request::Op::GetData(pb::GetDataRequest {
                                path: "/big".into(),
                                watch: false,
                            })),
                        })),
                    };
                    if tx.send(req).await.is_err() {
                        return;
                    }
                }
            })
        };
        eventually(30, "the server cuts the slow reader off", || async {
            limits(&s).slow_readers_closed.load(Relaxed) > 0
        })
        .await;
        other.get_data("/big").await.expect("other reads");
        let mut replies = 0;
        let status = loop {
            match futures::StreamExt::next(&mut slow.rx).await {
                Some(Ok(_)) => replies += 1,
                Some(Err(status)) => break Some(status),
                None => break None,
            }
        };
        sender.abort();
        assert!(replies < N, "not all {N} replies were buffered ({replies})");
        let status = status.expect("the stream ends with a status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("did not read"), "{status:?}");
        // The session reattaches.
        let again = raw::open(
            &addr,
            pb::ConnectRequest {
                session_id: slow.connected.session_id,
                password: slow.connected.password.clone(),
                ..connect
            },
        )
        .await
        .expect("reattach");
        assert_eq!(again.connected.session_id, slow.connected.session_id);
    })
    .await;
}

#[tokio::test]
async fn an_oversized_native_message_ends_only_its_stream() {
    bounded(60, async {
        // max_data_bytes 64 KiB: the native message limit is then 4 MiB + 64 KiB.
        init_tracing();
        let s = TestServer::start_with(|c| {
            c.tick_ms = 1000;
            c.max_data_bytes = 64 << 10;
        })
        .await
        .expect("start");
        let addr = s.connect_string();
        let other = Client::connect(&addr).await.expect("other");
        let connect = pb::ConnectRequest {
            session_id: 0,
            password: Bytes::new(),
            timeout_ms: 10_000,
            last_zxid_seen: 0,
        };
        let mut big = raw::open(&addr, connect.clone())
            .await
            .expect("raw session");
        let req = pb::ClientMessage {
            kind: Some(pb::client_message::Kind::Request(pb::Request {
                xid: 1,
                op: Some(pb::request::Op::Create(pb::CreateRequest {
                    path: "/huge".into(),
                    data: Bytes::from(vec![1u8; 5 << 20]),
                    ..Default::default()
                })),
            })),
        };
        big.tx.send(req).await.expect("send");
        let end = futures::StreamExt::next(&mut big.rx).await;
        match &end {
            Some(Err(status)) => {
                println!(
                    "oversized native message: {:?}: {}",
                    status.code(),
                    status.message()
                );
                assert!(status.message().contains("too large"), "{status:?}");
            }
            other => panic!("expected the stream to fail, got {other:?}"),
        }
        assert!(
            other.exists("/huge").await.expect("exists").is_none(),
            "nothing written"
        );
        other
            .create("/fine", "x", &CreateOptions::persistent())
            .await
            .expect("another session is unaffected");
        let again = raw::open(
            &addr,
            pb::ConnectRequest {
                session_id: big.connected.session_id,
                password: big.connected.password.clone(),
                ..connect
            },
        )
        .await
        .expect("the session reattaches");
        assert_eq!(again.connected.session_id, big.connected.session_id);
    })
    .await;
}
