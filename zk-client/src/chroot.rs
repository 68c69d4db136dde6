//! Chroot: a path prefix prepended to every path sent and stripped from every path received.

use std::sync::Arc;

use zk_proto::path;

use crate::error::Error;

/// The client's root inside the server tree (`/app` in `host:2181/app`). The default is
/// the server root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chroot {
    root: Option<Arc<str>>,
}

impl Chroot {
    /// A chroot at `root` (validated); `None` or `"/"` is the server root.
    pub(crate) fn new(root: Option<&str>) -> Result<Self, Error> {
        match root {
            None | Some("/") | Some("") => Ok(Chroot::default()),
            Some(r) => {
                path::validate(r, false)?;
                Ok(Chroot {
                    root: Some(Arc::from(r)),
                })
            }
        }
    }

    /// The server path of a (validated) client path.
    pub(crate) fn apply(&self, client_path: &str) -> String {
        match &self.root {
            None => client_path.to_string(),
            Some(root) if client_path == "/" => root.to_string(),
            Some(root) => format!("{root}{client_path}"),
        }
    }

    /// The client path of a server path. Paths outside the chroot (which the server
    /// should never send) are returned unchanged.
    pub(crate) fn strip(&self, server_path: &str) -> String {
        let Some(root) = &self.root else {
            return server_path.to_string();
        };
        match server_path.strip_prefix(&**root) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => server_path.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_and_strips() {
        let c = Chroot::new(Some("/app")).expect("valid");
        assert_eq!(c.apply("/"), "/app");
        assert_eq!(c.apply("/a/b"), "/app/a/b");
        assert_eq!(c.apply("/q/"), "/app/q/");
        assert_eq!(c.strip("/app"), "/");
        assert_eq!(c.strip("/app/a/b"), "/a/b");
        assert_eq!(c.strip("/apple"), "/apple");
        assert_eq!(c.strip("/other"), "/other");
        let none = Chroot::new(Some("/")).expect("valid");
        assert_eq!(none, Chroot::default());
        assert_eq!(none.apply("/a"), "/a");
        assert_eq!(none.strip("/a"), "/a");
        assert!(Chroot::new(Some("app")).is_err());
        assert!(Chroot::new(Some("/app/")).is_err());
    }
}
