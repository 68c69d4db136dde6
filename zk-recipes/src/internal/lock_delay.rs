//! Lock-delay (Chubby, Consul): after a holder vanished without releasing (its session
//! expired, or its grant was lost), the next holder waits before it is granted, for
//! resources that cannot check fencing tokens.
//!
//! The queue directory's data records the hand-over: a holder writes `held {name}` when
//! granted (in a multi that checks its node, so a deposed holder cannot write it) and
//! `free {name}` in the same multi that deletes its node on a clean release. A new head
//! that finds `held {someone else}` knows the previous holder vanished uncleanly and
//! waits the delay first (measured from when it notices, so at least the delay after the
//! vanishing). Every participant of one lock must use the same setting.

use std::time::Duration;

use bytes::Bytes;
use zk_client::{Client, Op};

use crate::error::{Error, Result};
use crate::internal::retry::retry;
use crate::internal::sequence::{delete_own, Node};

const HELD: &str = "held ";
const FREE: &str = "free ";

/// The ops of a clean release: delete our node and record it.
pub(crate) fn release_ops(dir: &str, node: &Node) -> Vec<Op> {
    vec![
        Op::delete(node.path.clone(), None),
        Op::set_data(dir, Bytes::from(format!("{FREE}{}", node.name)), None),
    ]
}

/// A clean release; an already deleted node is fine. Retried on `ConnectionLoss` (a
/// release that went through reports `NoNode` on the retry).
pub(crate) async fn release(client: &Client, dir: &str, node: &Node) -> Result<()> {
    let released = retry(client, "releasing", || {
        let multi = client.multi(release_ops(dir, node));
        async move {
            match multi.await {
                Ok(_) | Err(zk_client::Error::Multi { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    })
    .await;
    match released {
        Err(e) if e.is_expired() => Ok(()),
        // Whatever happened, make sure the node is gone.
        _ => delete_own(client, &node.path).await,
    }
}

/// Whether the previous holder vanished without a clean release.
async fn unclean(client: &Client, dir: &str, me: &Node) -> Result<bool> {
    let data = retry(client, "reading the lock-delay marker", || {
        let read = client.get_data(dir);
        async move {
            match read.await {
                Ok((data, _)) => Ok(data),
                Err(zk_client::Error::NoNode { .. }) => Ok(Bytes::new()),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    let text = String::from_utf8_lossy(&data);
    Ok(text.strip_prefix(HELD).is_some_and(|name| name != me.name))
}

/// Called by a new head before it is granted: waits `delay` if the previous holder
/// vanished uncleanly, then records this holder. Fails if our node is gone by then.
pub(crate) async fn before_grant(
    client: &Client,
    dir: &str,
    me: &Node,
    delay: Duration,
) -> Result<()> {
    if unclean(client, dir, me).await? {
        tracing::info!(
            dir,
            ?delay,
            "previous holder vanished without releasing: lock-delay"
        );
        tokio::time::sleep(delay).await;
    }
    record(client, dir, me).await
}

/// True when a grant now would need a lock-delay (for `try_acquire`).
pub(crate) async fn needs_delay(client: &Client, dir: &str, me: &Node) -> Result<bool> {
    unclean(client, dir, me).await
}

/// Records `me` as the holder, checking our node still exists.
pub(crate) async fn record(client: &Client, dir: &str, me: &Node) -> Result<()> {
    let ops = || {
        vec![
            Op::check(me.path.clone(), None),
            Op::set_data(dir, Bytes::from(format!("{HELD}{}", me.name)), None),
        ]
    };
    let recorded = retry(client, "recording the holder", || client.multi(ops())).await;
    match recorded {
        Ok(_) => Ok(()),
        Err(Error::Client(zk_client::Error::Multi { index: 0, .. })) => Err(Error::Lost {
            path: me.path.clone(),
        }),
        Err(e) => Err(e),
    }
}
