//! `ls [-R] PATH`

use serde_json::json;
use zk_client::Client;

use super::tree;
use crate::output::Output;
use crate::CmdResult;

pub async fn run(client: &Client, out: &Output, path: &str, recursive: bool) -> CmdResult {
    if recursive {
        // Like zkCli's `ls -R`: the node itself, then its descendants breadth-first.
        let all: Vec<String> = tree::levels(client, path)
            .await?
            .into_iter()
            .flatten()
            .collect();
        out.emit(
            || Some(all.join("\n")),
            || json!({ "path": path, "recursive": true, "paths": all }),
        );
    } else {
        let (mut children, _) = client.get_children(path).await?;
        children.sort();
        out.emit(
            || (!children.is_empty()).then(|| children.join("\n")),
            || json!({ "path": path, "children": children }),
        );
    }
    Ok(())
}
