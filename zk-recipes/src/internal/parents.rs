//! Creating the missing ancestors of a path.

use zk_client::{Client, CreateOptions};

use crate::error::{Error, Result};
use crate::internal::retry::retry;

/// Creates `path` and every missing ancestor as containers (the server deletes a
/// container some time after its last child is gone, so recipe directories do not pile
/// up). Existing nodes are left as they are. Retries on `ConnectionLoss` (a create that
/// already happened reports `NodeExists`, which is success here).
pub(crate) async fn ensure_containers(client: &Client, path: &str) -> Result<()> {
    // An ancestor (a container) can be reaped between our steps (`NoNode`): start over.
    loop {
        match create_each(client, path).await {
            Err(Error::Client(zk_client::Error::NoNode { .. })) => continue,
            other => return other,
        }
    }
}

async fn create_each(client: &Client, path: &str) -> Result<()> {
    let mut prefix = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(segment);
        retry(client, "creating parent nodes", || {
            let create = client.create(&prefix, Vec::new(), &CreateOptions::container());
            async move {
                match create.await {
                    Ok(_) | Err(zk_client::Error::NodeExists { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
    }
    Ok(())
}

/// Joins a directory and a child name.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Checks a recipe's base path early, so a bad one fails before anything is created.
pub(crate) fn check_path(path: &str) -> Result<()> {
    if !path.starts_with('/') || path == "/" || path.ends_with('/') {
        return Err(Error::InvalidArgument(format!(
            "recipe path {path:?} must be absolute, not the root, without a trailing '/'"
        )));
    }
    Ok(())
}
