//! Path helpers for the recipes of this half: joining, parents created on demand, random
//! member ids, and the sequence number of a sequential node's name.

use zk_client::{Client, CreateOptions, Error as ZkError};

use crate::error::Result;

/// `parent/child`, without doubling the `/` when `parent` is the root.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The parent of an absolute path (`/` for a top-level node).
pub(crate) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Creates `path` and every missing ancestor. Ancestors are persistent; `path` itself is
/// created with `leaf` (a container for a parent that should vanish when empty). An
/// existing node is fine. Connection losses are retried (creating is idempotent here).
pub(crate) async fn ensure_path(client: &Client, path: &str, leaf: CreateOptions) -> Result<()> {
    if path == "/" {
        return Ok(());
    }
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        prefix.push('/');
        prefix.push_str(part);
        let options = if i + 1 == parts.len() {
            leaf.clone()
        } else {
            CreateOptions::persistent()
        };
        // A container ancestor may vanish between two creates: a few rounds settle it.
        let mut attempts = 0;
        loop {
            match crate::internal::b_retry::retrying(client, || {
                client.create(&prefix, Vec::<u8>::new(), &options)
            })
            .await
            {
                Ok(_) => break,
                Err(crate::Error::Client(ZkError::NodeExists { .. })) => break,
                Err(crate::Error::Client(ZkError::NoNode { .. })) if attempts < 5 => {
                    attempts += 1;
                    Box::pin(ensure_path(
                        client,
                        parent(&prefix),
                        CreateOptions::persistent(),
                    ))
                    .await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// A random 16-hex-digit id (member names, markers of "protected" creates).
pub(crate) fn random_id() -> String {
    format!("{:016x}", zk_client::random::with_rng(|r| r.next_u64()))
}

/// The sequence number ZooKeeper appended to a sequential node's name (its last ten
/// digits), or `None` for other names.
pub(crate) fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_parents_and_sequences() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(sequence_of("item-abc-0000000042"), Some(42));
        assert_eq!(sequence_of("ready"), None);
        assert_eq!(sequence_of("x000000001a"), None);
        assert_eq!(random_id().len(), 16);
    }
}
