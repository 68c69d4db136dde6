//! `set`, `delete`, `deleteall`, `sync`

use futures::future::join_all;
use serde_json::json;
use zk_client::{Client, Error};

use super::tree;
use crate::output::{stat_json, Output};
use crate::CmdResult;

/// `-v -1` means "any version", as in ZooKeeper.
fn version(v: Option<i32>) -> Option<i32> {
    v.filter(|v| *v >= 0)
}

pub async fn set(
    client: &Client,
    out: &Output,
    path: &str,
    data: String,
    v: Option<i32>,
) -> CmdResult {
    let stat = client.set_data(path, data, version(v)).await?;
    out.emit(
        || None,
        || json!({ "path": path, "stat": stat_json(&stat) }),
    );
    Ok(())
}

pub async fn delete(client: &Client, out: &Output, path: &str, v: Option<i32>) -> CmdResult {
    client.delete(path, version(v)).await?;
    out.emit(|| None, || json!({ "path": path, "deleted": true }));
    Ok(())
}

/// Deletes the subtree deepest level first; each level's deletes are sent together.
/// Nodes already gone are fine. `/` itself cannot be deleted: only its descendants are
/// (except the reserved `/zookeeper` subtree).
pub async fn delete_all(client: &Client, out: &Output, path: &str) -> CmdResult {
    let levels = tree::levels(client, path).await?;
    let mut deleted = 0usize;
    for level in levels.iter().rev() {
        let targets: Vec<&String> = level
            .iter()
            .filter(|p| *p != "/" && *p != "/zookeeper" && !p.starts_with("/zookeeper/"))
            .collect();
        let results = join_all(targets.iter().map(|p| client.delete(p, None))).await;
        for result in results {
            match result {
                Ok(()) => deleted += 1,
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    out.emit(|| None, || json!({ "path": path, "deleted": deleted }));
    Ok(())
}

pub async fn sync(client: &Client, out: &Output, path: &str) -> CmdResult {
    client.sync(path).await?;
    out.emit(|| None, || json!({ "path": path, "synced": true }));
    Ok(())
}
