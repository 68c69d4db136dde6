//! `multi` (atomic) and `multi_read` through the client against a real server.

use bytes::Bytes;
use tests::{bounded, client, server};
use zk_client::{Code, CreateOptions, Error, Op, OpResult, ReadOp, ReadResult};

#[tokio::test]
async fn multi_applies_all_ops_atomically() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/m", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        let results = c
            .multi(vec![
                Op::check("/m", Some(0)),
                Op::create("/m/a", "a", CreateOptions::persistent()),
                Op::create("/m/a/b", "b", CreateOptions::persistent()),
                Op::set_data("/m", "1", Some(0)),
                Op::delete("/m/a/b", None),
            ])
            .await
            .expect("multi");
        assert_eq!(results.len(), 5);
        assert!(matches!(results[0], OpResult::Checked));
        assert!(matches!(&results[1], OpResult::Created { path, .. } if path == "/m/a"));
        assert!(matches!(&results[3], OpResult::DataSet { stat } if stat.version == 1));
        assert!(matches!(results[4], OpResult::Deleted));
        assert_eq!(c.get_data("/m").await.expect("get").0, Bytes::from("1"));
        assert!(c.exists("/m/a/b").await.expect("exists").is_none());
        // All ops of one multi share one zxid.
        let a = c.exists("/m/a").await.expect("exists").expect("a");
        let m = c.exists("/m").await.expect("exists").expect("m");
        assert_eq!(a.czxid, m.mzxid);
    })
    .await;
}

#[tokio::test]
async fn failed_multi_changes_nothing_and_reports_zookeeper_results() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/f", "0", &CreateOptions::persistent())
            .await
            .expect("create");
        let before = c.exists("/").await.expect("exists").expect("root");
        let e = c
            .multi(vec![
                Op::create("/f/new", "", CreateOptions::persistent()),
                Op::set_data("/f", "x", Some(5)),
                Op::delete("/f", None),
            ])
            .await
            .expect_err("bad version");
        match &e {
            Error::Multi { index, results, .. } => {
                assert_eq!(*index, 1);
                assert_eq!(
                    *results,
                    vec![Code::Ok, Code::BadVersion, Code::RuntimeInconsistency]
                );
            }
            other => panic!("expected a multi error, got {other:?}"),
        }
        assert_eq!(e.code(), Code::BadVersion);
        assert!(c.exists("/f/new").await.expect("exists").is_none());
        assert_eq!(c.get_data("/f").await.expect("get").1.version, 0);
        let after = c.exists("/").await.expect("exists").expect("root");
        assert_eq!(after.cversion, before.cversion);
        assert_eq!(after.pzxid, before.pzxid);
    })
    .await;
}

#[tokio::test]
async fn multi_read_answers_each_op() {
    bounded(20, async {
        let s = server().await;
        let c = client(&s).await;
        c.create("/r", "data", &CreateOptions::persistent()).await.expect("create");
        c.create("/r/k", "", &CreateOptions::persistent()).await.expect("create");
        let results = c
            .multi_read(vec![
                ReadOp::GetData("/r".into()),
                ReadOp::GetChildren("/r".into()),
                ReadOp::GetData("/missing".into()),
            ])
            .await
            .expect("multi_read");
        assert!(matches!(&results[0], ReadResult::Data { data, .. } if data == &Bytes::from("data")));
        assert!(matches!(&results[1], ReadResult::Children { children, .. } if children == &vec!["k".to_string()]));
        assert!(matches!(results[2], ReadResult::Error(Code::NoNode)));
    })
    .await;
}
