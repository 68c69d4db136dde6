//! Znode path validation: Apache ZooKeeper's rules (`PathUtils.validatePath`).

use thiserror::Error;

/// Why a path is not a valid znode path. The message names the path and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct InvalidPath {
    /// The path as given.
    pub path: String,
    /// The rule it breaks.
    pub reason: &'static str,
}

fn invalid(path: &str, reason: &'static str) -> InvalidPath {
    InvalidPath {
        path: path.to_string(),
        reason,
    }
}

/// True for characters ZooKeeper forbids in a path.
fn forbidden(c: char) -> bool {
    let u = c as u32;
    u <= 0x1f
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
}

/// Validates a znode path. `sequential` allows a trailing `/` (a sequential create of
/// `/q/` makes `/q/0000000003`), as ZooKeeper does.
pub fn validate(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if path.is_empty() {
        return Err(invalid(path, "path must not be empty"));
    }
    if !path.starts_with('/') {
        return Err(invalid(path, "path must start with /"));
    }
    if path == "/" {
        // The root itself; with `sequential`, a child of the root named by its number.
        return Ok(());
    }
    let body = if sequential && path.ends_with('/') {
        &path[..path.len() - 1]
    } else {
        if path.ends_with('/') {
            return Err(invalid(path, "path must not end with /"));
        }
        path
    };
    if body.is_empty() {
        return Ok(());
    }
    for segment in body[1..].split('/') {
        if segment.is_empty() {
            return Err(invalid(path, "empty segment (//) is not allowed"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid(path, "relative segments (. or ..) are not allowed"));
        }
    }
    if path.chars().any(forbidden) {
        return Err(invalid(
            path,
            "control or reserved unicode characters are not allowed",
        ));
    }
    Ok(())
}

/// The parent of a valid path (`/` for top-level nodes); `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last segment of a valid path (`""` for the root).
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// True when `path` is the reserved `/zookeeper` subtree (read-only for clients).
pub fn is_reserved(path: &str) -> bool {
    path == "/zookeeper" || path.starts_with("/zookeeper/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        for p in ["/", "/a", "/a/b", "/a-b_c.d", "/a/..b", "/ünïcode"] {
            assert_eq!(validate(p, false), Ok(()), "{p}");
        }
        assert_eq!(validate("/q/", true), Ok(()));
        assert_eq!(validate("/", true), Ok(()));
    }

    #[test]
    fn rejects_invalid_paths_with_the_rule() {
        let cases = [
            ("", "empty"),
            ("a", "start with /"),
            ("/a/", "end with /"),
            ("/a//b", "empty segment"),
            ("/a/./b", "relative"),
            ("/a/..", "relative"),
            ("/a\u{0}b", "control"),
            ("/a\u{1f}", "control"),
            ("/a\u{7f}", "control"),
            ("/a\u{fff5}", "control"),
        ];
        for (p, why) in cases {
            let e = validate(p, false).expect_err(p);
            assert!(e.reason.contains(why), "{p}: {}", e.reason);
            assert!(e.to_string().contains(&format!("{p:?}")));
        }
        assert!(validate("/q//", true).is_err());
    }

    #[test]
    fn parent_basename_join() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_reserved("/zookeeper/quota"));
        assert!(!is_reserved("/zookeeperx"));
    }
}
