//! The big tree of a lifecycle run: `/zkb-tree/pNNNN/nNNN`, 1000 children per parent,
//! values of `value_size` bytes, built with pipelined creates over a few sessions; a
//! last node `/zkb-tree/last` marks it complete (a restarted server that serves it has
//! recovered the whole tree).

use bytes::Bytes;
use futures::future::join_all;

use crate::workloads::{create_many, Conn};
use crate::Target;

/// The tree's root.
pub const ROOT: &str = "/zkb-tree";
/// Created after every other node of the tree.
pub const LAST: &str = "/zkb-tree/last";
/// Children per parent.
const FANOUT: usize = 1000;
/// Sessions creating at once, and creates each keeps in flight.
const SESSIONS: usize = 4;
const WINDOW: usize = 256;

/// The path of the i-th node.
pub fn node_path(i: usize) -> String {
    format!("{ROOT}/p{:04}/n{:03}", i / FANOUT, i % FANOUT)
}

/// The parents needed for `count` nodes.
fn parents(count: usize) -> impl Iterator<Item = String> {
    (0..count.div_ceil(FANOUT)).map(|p| format!("{ROOT}/p{p:04}"))
}

/// Creates the tree of `count` nodes (plus its parents and [`LAST`]) on `addr`.
pub async fn build(
    target: Target,
    addr: &str,
    count: usize,
    value_size: usize,
) -> Result<(), String> {
    let admin = Conn::connect(target, addr, None).await?;
    let result = async {
        admin
            .create(ROOT, &Bytes::new())
            .await
            .map_err(|e| format!("create {ROOT}: {e}"))?;
        create_many(&admin, parents(count), Bytes::new(), WINDOW).await?;
        let value = Bytes::from(vec![b'v'; value_size]);
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS {
            sessions.push(Conn::connect(target, addr, None).await?);
        }
        let per = count.div_ceil(SESSIONS);
        let runs = sessions.iter().enumerate().map(|(s, conn)| {
            let range = (s * per)..((s + 1) * per).min(count);
            create_many(conn, range.map(node_path), value.clone(), WINDOW)
        });
        let results = join_all(runs).await;
        crate::workloads::close_all(sessions).await;
        results.into_iter().collect::<Result<Vec<()>, String>>()?;
        admin
            .create(LAST, &value)
            .await
            .map_err(|e| format!("create {LAST}: {e}"))
    }
    .await;
    admin.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_spread_over_parents() {
        assert_eq!(node_path(0), "/zkb-tree/p0000/n000");
        assert_eq!(node_path(1999), "/zkb-tree/p0001/n999");
        assert_eq!(parents(1000).count(), 1);
        assert_eq!(parents(1001).count(), 2);
        assert_eq!(
            parents(1_000_000).last().as_deref(),
            Some("/zkb-tree/p0999")
        );
    }
}
