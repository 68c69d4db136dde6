//! `get PATH`, `stat PATH`

use serde_json::json;
use zk_client::Client;

use crate::output::{data_json, data_text, stat_json, stat_text, Output};
use crate::{CliError, CmdResult};

pub async fn get(client: &Client, out: &Output, path: &str) -> CmdResult {
    let (data, stat) = client.get_data(path).await?;
    out.emit(
        || Some(data_text(&data)),
        || {
            let (text, encoding) = data_json(&data);
            json!({ "path": path, "data": text, "encoding": encoding, "stat": stat_json(&stat) })
        },
    );
    Ok(())
}

pub async fn stat(client: &Client, out: &Output, path: &str) -> CmdResult {
    let stat = client
        .exists(path)
        .await?
        .ok_or_else(|| CliError(format!("no node at {path}")))?;
    out.emit(
        || Some(stat_text(&stat)),
        || json!({ "path": path, "stat": stat_json(&stat) }),
    );
    Ok(())
}
