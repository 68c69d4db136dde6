//! Walking a subtree breadth-first, one level of requests in flight at a time.

use futures::future::join_all;
use zk_client::{Client, Error};

/// Joins a parent path and a child name.
pub fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `root` and all its descendants, level by level (each level sorted). The children of
/// a level are listed concurrently. A node deleted while we walk is skipped; `root`
/// itself missing is an error.
pub async fn levels(client: &Client, root: &str) -> Result<Vec<Vec<String>>, Error> {
    let (mut children, _) = client.get_children(root).await?;
    children.sort();
    let mut levels = vec![vec![root.to_string()]];
    let mut next: Vec<String> = children.iter().map(|c| child_path(root, c)).collect();
    while !next.is_empty() {
        let listed = join_all(next.iter().map(|p| client.get_children(p))).await;
        let mut below = Vec::new();
        for (parent, result) in next.iter().zip(listed) {
            match result {
                Ok((mut kids, _)) => {
                    kids.sort();
                    below.extend(kids.iter().map(|k| child_path(parent, k)));
                }
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        levels.push(std::mem::replace(&mut next, below));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}
