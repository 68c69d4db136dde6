//! Access control: ZooKeeper's ACL model (world, auth, digest, ip; READ, WRITE, CREATE,
//! DELETE, ADMIN), NoAuth / InvalidACL, set_acl's aversion, the super user, checks inside
//! multi, getACL's digest redaction (CVE-2019-0201), persistence across restarts, the
//! ZooKeeper protocol, and a denied write through a follower.

use std::time::Duration;

use tests::{bounded, client, server};
use zk_client::{digest_id, Acl, Client, Code, CreateOptions, Op, Perms};
use zk_server::testing::{TestCluster, TestServer};
use zookeeper_client as zk;

const ALICE: &str = "alice:pw";

async fn alice(s: &TestServer) -> Client {
    let c = client(s).await;
    c.add_auth("digest", ALICE).await.expect("addauth alice");
    c
}

fn alice_all() -> Acl {
    Acl::digest(Perms::ALL, "alice", "pw")
}

fn with(acl: Vec<Acl>) -> CreateOptions {
    CreateOptions::persistent().with_acl(acl)
}

fn code<T: std::fmt::Debug>(r: zk_client::Result<T>) -> Code {
    r.expect_err("expected an error").code()
}

#[tokio::test]
async fn each_permission_is_enforced() {
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        let other = client(&s).await;

        // Anyone may read, only alice may do anything else.
        let read_only = vec![alice_all(), Acl::new(Perms::READ, "world", "anyone")];
        owner
            .create("/p", "v", &with(read_only))
            .await
            .expect("create");
        owner
            .create("/p/k", "", &with(vec![]))
            .await
            .expect("child");
        assert_eq!(other.get_data("/p").await.expect("read").0, "v");
        assert_eq!(code(other.set_data("/p", "x", None).await), Code::NoAuth);
        assert_eq!(
            code(other.create("/p/x", "", &with(vec![])).await),
            Code::NoAuth
        );
        assert_eq!(code(other.delete("/p/k", None).await), Code::NoAuth);
        let acl = Acl::open_unsafe();
        assert_eq!(code(other.set_acl("/p", &acl, None).await), Code::NoAuth);
        // The owner may do all of it.
        owner.set_data("/p", "w", None).await.expect("write");
        owner
            .create("/p/x", "", &with(vec![]))
            .await
            .expect("create");
        owner.delete("/p/k", None).await.expect("delete");

        // WRITE without READ: reads are refused, exists is not (ZooKeeper checks no
        // permission for exists), writes pass.
        let write_only = vec![Acl::new(Perms::WRITE, "world", "anyone")];
        owner
            .create("/w", "", &with(write_only))
            .await
            .expect("create /w");
        assert_eq!(code(other.get_data("/w").await), Code::NoAuth);
        assert_eq!(code(other.get_children("/w").await), Code::NoAuth);
        assert_eq!(
            code(other.get_all_children_number("/w").await),
            Code::NoAuth
        );
        // exists needs READ too (ZooKeeper 3.8.4+, ZOOKEEPER-2590).
        assert_eq!(code(other.exists("/w").await), Code::NoAuth);
        other.set_data("/w", "ok", None).await.expect("world write");

        // CREATE and DELETE are the parent's.
        let cd = vec![Acl::new(Perms::CREATE | Perms::DELETE, "world", "anyone")];
        owner
            .create("/cd", "", &with(cd))
            .await
            .expect("create /cd");
        other
            .create("/cd/a", "", &with(vec![]))
            .await
            .expect("create under");
        other.delete("/cd/a", None).await.expect("delete under");
        assert_eq!(code(other.get_children("/cd").await), Code::NoAuth);
    })
    .await;
}

#[tokio::test]
async fn digest_auth_and_the_auth_scheme() {
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        let (_, stat) = owner
            .create("/n", "", &with(Acl::creator_all()))
            .await
            .expect("create with auth");
        assert_eq!(stat.aversion, 0);
        let (acl, _) = owner.get_acl("/n").await.expect("get_acl");
        assert_eq!(
            acl,
            vec![Acl::new(Perms::ALL, "digest", digest_id("alice", "pw"))]
        );

        let other = client(&s).await;
        // `auth` with no authenticated identity is InvalidACL.
        assert_eq!(
            code(other.create("/m", "", &with(Acl::creator_all())).await),
            Code::InvalidAcl
        );
        assert_eq!(code(other.get_data("/n").await), Code::NoAuth);
        other.add_auth("digest", "bob:pw").await.expect("bob");
        assert_eq!(code(other.get_data("/n").await), Code::NoAuth);
        other
            .add_auth("digest", "alice:wrong")
            .await
            .expect("wrong pw");
        assert_eq!(code(other.get_data("/n").await), Code::NoAuth);
        other.add_auth("digest", ALICE).await.expect("alice");
        other.get_data("/n").await.expect("now allowed");
        // Unsupported scheme or malformed credentials.
        assert_eq!(
            code(other.add_auth("kerberos", "x").await),
            Code::AuthFailed
        );
        assert_eq!(
            code(other.add_auth("digest", "nocolon").await),
            Code::AuthFailed
        );
    })
    .await;
}

#[tokio::test]
async fn ip_scheme_matches_the_client_address() {
    bounded(30, async {
        let s = server().await;
        let c = client(&s).await;
        let local = vec![Acl::new(Perms::ALL, "ip", "127.0.0.1")];
        c.create("/local", "", &with(local)).await.expect("create");
        c.get_data("/local").await.expect("127.0.0.1 allowed");
        let cidr = vec![Acl::new(Perms::ALL, "ip", "127.0.0.0/8")];
        c.create("/loopnet", "", &with(cidr)).await.expect("create");
        c.get_data("/loopnet").await.expect("127/8 allowed");
        let ten = vec![Acl::new(Perms::ALL, "ip", "10.0.0.0/8")];
        c.create("/ten", "", &with(ten)).await.expect("create");
        assert_eq!(code(c.get_data("/ten").await), Code::NoAuth);
        assert_eq!(code(c.set_data("/ten", "", None).await), Code::NoAuth);
    })
    .await;
}

#[tokio::test]
async fn set_acl_checks_aversion_and_rejects_invalid_acls() {
    bounded(30, async {
        let s = server().await;
        let c = alice(&s).await;
        c.create("/a", "", &with(vec![])).await.expect("create");
        let st = c
            .set_acl("/a", &[alice_all()], Some(0))
            .await
            .expect("set_acl");
        assert_eq!((st.aversion, st.version), (1, 0));
        assert_eq!(
            code(c.set_acl("/a", &[alice_all()], Some(0)).await),
            Code::BadVersion
        );
        c.set_acl("/a", &[alice_all()], Some(1)).await.expect("v1");
        assert_eq!(
            code(c.set_acl("/nope", &[alice_all()], None).await),
            Code::NoNode
        );

        let bad = [
            vec![],
            vec![Acl::new(Perms::ALL, "world", "someone")],
            vec![Acl::new(Perms::ALL, "digest", "nohash")],
            vec![Acl::new(Perms::ALL, "ip", "1.2.3.4/40")],
            vec![Acl::new(Perms::ALL, "ip", "not-an-ip")],
            vec![Acl::new(Perms::ALL, "x509", "")],
        ];
        for acl in &bad {
            assert_eq!(
                code(c.set_acl("/a", acl, None).await),
                Code::InvalidAcl,
                "{acl:?}"
            );
            if !acl.is_empty() {
                let r = c.create("/b", "", &with(acl.clone())).await;
                assert_eq!(code(r), Code::InvalidAcl, "{acl:?}");
            }
        }
        let anon = client(&s).await;
        let r = anon.set_acl("/a", &Acl::creator_all(), None).await;
        assert_eq!(code(r), Code::InvalidAcl);
        // ADMIN alone is enough for setACL; READ alone is not.
        let ro = [Acl::new(Perms::READ, "world", "anyone")];
        c.create("/ro", "", &with(ro.to_vec())).await.expect("ro");
        assert_eq!(code(anon.set_acl("/ro", &ro, None).await), Code::NoAuth);
    })
    .await;
}

#[tokio::test]
async fn super_user_bypasses_every_check() {
    bounded(30, async {
        let super_digest = digest_id("super", "secret");
        let s = TestServer::start_with(|c| c.super_digest = Some(super_digest))
            .await
            .expect("start");
        let owner = alice(&s).await;
        owner
            .create("/locked", "x", &with(vec![alice_all()]))
            .await
            .expect("create");
        owner
            .create("/locked/c", "", &with(vec![alice_all()]))
            .await
            .expect("child");
        let root = client(&s).await;
        assert_eq!(code(root.get_data("/locked").await), Code::NoAuth);
        root.add_auth("digest", "super:secret")
            .await
            .expect("super");
        root.get_data("/locked").await.expect("read");
        root.set_data("/locked", "y", None).await.expect("write");
        let (acl, _) = root.get_acl("/locked").await.expect("get_acl");
        assert_eq!(acl, vec![alice_all()], "super sees unredacted digests");
        root.delete("/locked/c", None).await.expect("delete");
        root.set_acl("/locked", &Acl::open_unsafe(), None)
            .await
            .expect("set_acl");
        // A wrong super password is just another digest.
        let other = client(&s).await;
        other
            .add_auth("digest", "super:wrong")
            .await
            .expect("addauth");
        owner
            .set_acl("/locked", &[alice_all()], None)
            .await
            .expect("back");
        assert_eq!(code(other.get_data("/locked").await), Code::NoAuth);
    })
    .await;
}

#[tokio::test]
async fn multi_checks_every_op() {
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        let other = client(&s).await;
        let acl = vec![alice_all(), Acl::new(Perms::READ, "world", "anyone")];
        owner.create("/m", "0", &with(acl)).await.expect("create");

        let r = other
            .multi(vec![
                Op::check("/m", Some(0)),
                Op::set_data("/m", "1", None),
            ])
            .await;
        match r {
            Err(zk_client::Error::Multi { index, code, .. }) => {
                assert_eq!((index, code), (1, Code::NoAuth));
            }
            other => panic!("{other:?}"),
        }
        let r = other
            .multi(vec![Op::create("/m/x", "", CreateOptions::persistent())])
            .await;
        assert_eq!(code(r), Code::NoAuth);
        // Nothing applied.
        assert_eq!(owner.get_data("/m").await.expect("get").0, "0");
        assert!(owner.exists("/m/x").await.expect("exists").is_none());
        // A check needs READ: a node nobody but alice can read.
        owner
            .create("/secret", "", &with(vec![alice_all()]))
            .await
            .expect("secret");
        let r = other.multi(vec![Op::check("/secret", None)]).await;
        assert_eq!(code(r), Code::NoAuth);
        // The owner's multi passes, with an ACL on the created node.
        owner
            .multi(vec![
                Op::set_data("/m", "1", Some(0)),
                Op::create("/m/y", "", with(vec![alice_all()])),
            ])
            .await
            .expect("owner multi");
        assert_eq!(code(other.get_data("/m/y").await), Code::NoAuth);
    })
    .await;
}

#[tokio::test]
async fn get_acl_redacts_digests_without_admin() {
    // Regression test for the CVE-2019-0201 class: getACL must not hand out the digest
    // hashes to a caller that may only read.
    bounded(30, async {
        let s = server().await;
        let owner = alice(&s).await;
        let acl = vec![
            Acl::new(Perms::READ, "world", "anyone"),
            alice_all(),
            Acl::new(Perms::READ, "ip", "10.0.0.0/8"),
        ];
        owner
            .create("/r", "", &with(acl.clone()))
            .await
            .expect("create");
        let (full, stat) = owner.get_acl("/r").await.expect("admin");
        assert_eq!(full, acl);
        assert_eq!(stat.aversion, 0);

        let reader = client(&s).await;
        let (seen, _) = reader.get_acl("/r").await.expect("READ is enough");
        assert_eq!(
            seen,
            vec![
                Acl::new(Perms::READ, "world", "anyone"),
                Acl::new(Perms::ALL, "digest", "alice:x"),
                Acl::new(Perms::READ, "ip", "10.0.0.0/8"),
            ]
        );
        assert!(!format!("{seen:?}").contains(&digest_id("alice", "pw")[6..]));

        // ADMIN without READ also answers, unredacted.
        let admin = vec![Acl::new(Perms::ADMIN, "world", "anyone"), alice_all()];
        owner
            .create("/adm", "", &with(admin.clone()))
            .await
            .expect("adm");
        assert_eq!(reader.get_acl("/adm").await.expect("admin").0, admin);
        // Neither READ nor ADMIN: NoAuth.
        owner
            .create("/none", "", &with(vec![alice_all()]))
            .await
            .expect("none");
        assert_eq!(code(reader.get_acl("/none").await), Code::NoAuth);
        assert_eq!(code(reader.get_acl("/missing").await), Code::NoNode);
    })
    .await;
}

#[tokio::test]
async fn acls_survive_restart() {
    bounded(60, async {
        let mut s = TestServer::start_with(|c| c.snapshot_every = 5)
            .await
            .expect("start");
        let owner = alice(&s).await;
        owner
            .create("/early", "", &with(vec![alice_all()]))
            .await
            .expect("early");
        for i in 0..20 {
            owner
                .create(&format!("/filler{i}"), "", &with(vec![]))
                .await
                .expect("filler");
        }
        // After the snapshot: in the log only.
        owner
            .create("/late", "", &with(vec![alice_all()]))
            .await
            .expect("late");
        owner
            .set_acl(
                "/filler0",
                &[Acl::new(Perms::READ, "world", "anyone")],
                None,
            )
            .await
            .expect("set_acl");
        drop(owner);
        s.restart().await.expect("restart");

        let anon = client(&s).await;
        for p in ["/early", "/late"] {
            assert_eq!(code(anon.get_data(p).await), Code::NoAuth, "{p}");
        }
        assert_eq!(
            code(anon.set_data("/filler0", "", None).await),
            Code::NoAuth
        );
        let owner = alice(&s).await;
        for p in ["/early", "/late"] {
            let (acl, _) = owner.get_acl(p).await.expect(p);
            assert_eq!(acl, vec![alice_all()]);
        }
        let (_, st) = owner.get_acl("/filler0").await.expect("filler0");
        assert_eq!(st.aversion, 1);
    })
    .await;
}

#[tokio::test]
async fn auth_is_resent_after_a_reconnect() {
    bounded(60, async {
        let mut s = server().await;
        let owner = alice(&s).await;
        owner
            .create("/mine", "", &with(vec![alice_all()]))
            .await
            .expect("create");
        s.restart().await.expect("restart");
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match owner.get_data("/mine").await {
                    Ok(_) => break,
                    Err(e) if e.code() == Code::ConnectionLoss => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("reconnected with its identity");
    })
    .await;
}

async fn zk_client(s: &TestServer) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .connect(&s.connect_string())
        .await
        .expect("connect zookeeper-client")
}

#[tokio::test]
async fn zookeeper_protocol_digest_acl() {
    bounded(30, async {
        let s = server().await;
        let owner = zk_client(&s).await;
        owner.auth("digest", b"alice:pw").await.expect("auth");
        let id = digest_id("alice", "pw");
        let acls = vec![
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &id)),
            zk::Acl::new(zk::Permission::READ, zk::AuthId::new("world", "anyone")),
        ];
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acls));
        owner.create("/z", b"v", &opts).await.expect("create");
        let (got, _) = owner.get_acl("/z").await.expect("get_acl");
        assert_eq!(got, acls);

        let other = zk_client(&s).await;
        assert_eq!(
            other.set_data("/z", b"x", None).await.err(),
            Some(zk::Error::NoAuth)
        );
        let (seen, _) = other.get_acl("/z").await.expect("get_acl as reader");
        assert_eq!(
            seen[0].id(),
            "alice:x",
            "redacted on the ZooKeeper protocol too"
        );
        other.auth("digest", b"alice:pw").await.expect("auth");
        other.set_data("/z", b"x", None).await.expect("after auth");
        other
            .set_acl("/z", &acls[..1], None)
            .await
            .expect("set_acl");
        assert_eq!(
            owner.set_acl("/z", &acls, Some(0)).await.err(),
            Some(zk::Error::BadVersion)
        );
        let anyone = zk_client(&s).await;
        assert_eq!(anyone.get_data("/z").await.err(), Some(zk::Error::NoAuth));
        // A native session sees the same ACL.
        let native = client(&s).await;
        assert_eq!(code(native.get_data("/z").await), Code::NoAuth);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_write_through_a_follower() {
    bounded(60, async {
        let c = TestCluster::start(3, 0).await.expect("cluster");
        let leader = c
            .wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let follower = (leader + 1) % 3;
        let on = |i: usize| {
            Client::builder()
                .servers(&c.client_addr(i))
                .session_timeout(Duration::from_secs(2))
                .connect()
        };
        let owner = on(leader).await.expect("owner");
        owner.add_auth("digest", ALICE).await.expect("auth");
        owner
            .create("/f", "", &with(vec![alice_all()]))
            .await
            .expect("create");
        let other = on(follower).await.expect("other");
        other.sync("/f").await.expect("sync");
        assert_eq!(code(other.set_data("/f", "x", None).await), Code::NoAuth);
        assert_eq!(code(other.get_data("/f").await), Code::NoAuth);
        other.add_auth("digest", ALICE).await.expect("auth");
        other
            .set_data("/f", "x", None)
            .await
            .expect("forwarded with identity");
        assert_eq!(owner.get_data("/f").await.expect("read").0, "x");
        c.shutdown().await;
    })
    .await;
}
