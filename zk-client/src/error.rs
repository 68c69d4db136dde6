//! The one error type of the client.

use thiserror::Error;
use zk_proto::path::InvalidPath;
use zk_proto::Code;

/// The result type of every client operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything a client operation can fail with.
///
/// Server-reported failures carry the operation (`op`, e.g. `"set_data"`) and the path as
/// the caller gave it (chroot not included), so `Display` is one line that says what
/// failed where. [`Error::code`] gives ZooKeeper's code for any variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The node does not exist (or a parent is missing, for create).
    #[error("no node at {path} ({op})")]
    NoNode { op: &'static str, path: String },
    /// The node already exists.
    #[error("node {path} already exists ({op})")]
    NodeExists { op: &'static str, path: String },
    /// The expected version did not match.
    #[error("bad version for {path} ({op})")]
    BadVersion { op: &'static str, path: String },
    /// The node has children and cannot be deleted.
    #[error("node {path} is not empty ({op})")]
    NotEmpty { op: &'static str, path: String },
    /// Ephemeral nodes cannot have children.
    #[error("cannot create children of ephemeral node for {path} ({op})")]
    NoChildrenForEphemerals { op: &'static str, path: String },
    /// The server rejected the arguments (bad TTL, bad mode, reserved path, ...).
    #[error("bad arguments for {path} ({op}): {message}")]
    BadArguments {
        op: &'static str,
        path: String,
        message: String,
    },
    /// Not authorized.
    #[error("not authorized for {path} ({op})")]
    NoAuth { op: &'static str, path: String },
    /// Invalid ACL.
    #[error("invalid ACL for {path} ({op})")]
    InvalidAcl { op: &'static str, path: String },
    /// The session has expired; this client can do nothing more. Make a new one.
    #[error("session expired ({op} {path})")]
    SessionExpired { op: &'static str, path: String },
    /// The session moved to another server.
    #[error("session moved ({op} {path})")]
    SessionMoved { op: &'static str, path: String },
    /// The server does not implement the operation.
    #[error("operation not implemented by the server ({op} {path})")]
    Unimplemented { op: &'static str, path: String },
    /// `remove_watches` found no such watch.
    #[error("no watcher for {path} ({op})")]
    NoWatcher { op: &'static str, path: String },
    /// A quota was exceeded.
    #[error("quota exceeded for {path} ({op})")]
    QuotaExceeded { op: &'static str, path: String },
    /// The server is overloaded and throttled the request; retry later.
    #[error("request throttled by the server ({op} {path})")]
    Throttled { op: &'static str, path: String },
    /// The server timed the operation out.
    #[error("operation timed out on the server ({op} {path})")]
    OperationTimeout { op: &'static str, path: String },
    /// The connection broke before the reply came: the operation may or may not have
    /// taken effect. The client is reconnecting; retry (idempotently) if it matters.
    #[error("connection lost during {op} {path}; the outcome is unknown")]
    ConnectionLoss { op: &'static str, path: String },
    /// The client was closed ([`crate::Client::close`] or all clones dropped).
    #[error("client is closed")]
    Closed,
    /// No server accepted the connection in time.
    #[error("timed out connecting to the servers")]
    Timeout,
    /// The path was rejected by client-side validation; nothing was sent.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// A `multi` failed and nothing was applied. `results` are ZooKeeper's per-op codes:
    /// `Ok` before `index`, the failure (`code`) at `index`, `RuntimeInconsistency` after.
    #[error("multi failed at op {index} with {code}")]
    Multi {
        index: usize,
        code: Code,
        results: Vec<Code>,
    },
    /// A transport-level failure (connect refused, bad address, TLS, ...).
    #[error("transport error: {0}")]
    Transport(String),
    /// Any other ZooKeeper code.
    #[error("{op} {path} failed with {code}: {message}")]
    Other {
        code: Code,
        op: &'static str,
        path: String,
        message: String,
    },
}

impl Error {
    /// The error for a non-OK ZooKeeper code returned by the server for `op` on `path`.
    pub fn from_code(code: Code, op: &'static str, path: &str, message: &str) -> Error {
        let path = path.to_string();
        match code {
            Code::NoNode => Error::NoNode { op, path },
            Code::NodeExists => Error::NodeExists { op, path },
            Code::BadVersion => Error::BadVersion { op, path },
            Code::NotEmpty => Error::NotEmpty { op, path },
            Code::NoChildrenForEphemerals => Error::NoChildrenForEphemerals { op, path },
            Code::BadArguments => Error::BadArguments {
                op,
                path,
                message: message.to_string(),
            },
            Code::NoAuth => Error::NoAuth { op, path },
            Code::InvalidAcl => Error::InvalidAcl { op, path },
            Code::SessionExpired => Error::SessionExpired { op, path },
            Code::SessionMoved => Error::SessionMoved { op, path },
            Code::Unimplemented => Error::Unimplemented { op, path },
            Code::NoWatcher => Error::NoWatcher { op, path },
            Code::QuotaExceeded => Error::QuotaExceeded { op, path },
            Code::Throttled => Error::Throttled { op, path },
            Code::OperationTimeout => Error::OperationTimeout { op, path },
            Code::ConnectionLoss => Error::ConnectionLoss { op, path },
            code => Error::Other {
                code,
                op,
                path,
                message: message.to_string(),
            },
        }
    }

    /// ZooKeeper's code for this error. Client-side conditions map to the code a
    /// ZooKeeper client reports for them: `Closed` -> `SessionExpired` (as the Java client
    /// does after close), `Timeout`/`Transport` -> `ConnectionLoss`, `InvalidPath` ->
    /// `BadArguments`.
    pub fn code(&self) -> Code {
        match self {
            Error::NoNode { .. } => Code::NoNode,
            Error::NodeExists { .. } => Code::NodeExists,
            Error::BadVersion { .. } => Code::BadVersion,
            Error::NotEmpty { .. } => Code::NotEmpty,
            Error::NoChildrenForEphemerals { .. } => Code::NoChildrenForEphemerals,
            Error::BadArguments { .. } => Code::BadArguments,
            Error::NoAuth { .. } => Code::NoAuth,
            Error::InvalidAcl { .. } => Code::InvalidAcl,
            Error::SessionExpired { .. } => Code::SessionExpired,
            Error::SessionMoved { .. } => Code::SessionMoved,
            Error::Unimplemented { .. } => Code::Unimplemented,
            Error::NoWatcher { .. } => Code::NoWatcher,
            Error::QuotaExceeded { .. } => Code::QuotaExceeded,
            Error::Throttled { .. } => Code::Throttled,
            Error::OperationTimeout { .. } => Code::OperationTimeout,
            Error::ConnectionLoss { .. } => Code::ConnectionLoss,
            Error::Closed => Code::SessionExpired,
            Error::Timeout => Code::ConnectionLoss,
            Error::InvalidPath(_) => Code::BadArguments,
            Error::Multi { code, .. } => *code,
            Error::Transport(_) => Code::ConnectionLoss,
            Error::Other { code, .. } => *code,
        }
    }

    /// True when retrying on the same client may succeed: the connection broke, the
    /// server throttled or timed out. The outcome of the failed attempt is unknown for
    /// `ConnectionLoss`.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss { .. }
                | Error::Throttled { .. }
                | Error::OperationTimeout { .. }
                | Error::Timeout
                | Error::Transport(_)
        )
    }

    /// A reply that does not have the shape the protocol promises.
    pub(crate) fn unexpected(op: &'static str, path: &str) -> Error {
        Error::Other {
            code: Code::MarshallingError,
            op,
            path: path.to_string(),
            message: "unexpected response from the server".to_string(),
        }
    }

    /// A request rejected by client-side argument checks.
    pub(crate) fn bad_arguments(op: &'static str, path: &str, message: &str) -> Error {
        Error::BadArguments {
            op,
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code ZooKeeper defines (wire values -1 .. -127), plus unknown ones.
    const ALL: &[i32] = &[
        -1, -2, -3, -4, -5, -6, -7, -8, -12, -13, -14, -100, -101, -102, -103, -108, -110, -111,
        -112, -113, -114, -115, -118, -119, -120, -121, -122, -123, -125, -127, -999,
    ];

    #[test]
    fn every_code_round_trips_through_the_error() {
        for &v in ALL {
            let code = Code::from_i32(v);
            let e = Error::from_code(code, "get_data", "/a/b", "detail");
            assert_eq!(e.code(), code, "{v}");
            let text = e.to_string();
            assert!(text.contains("/a/b"), "{text}");
            assert!(!text.contains('\n'));
        }
    }

    #[test]
    fn common_codes_have_their_own_variant_and_message() {
        let e = Error::from_code(Code::NoNode, "get_data", "/a/b", "");
        assert!(matches!(e, Error::NoNode { op: "get_data", .. }));
        assert_eq!(e.to_string(), "no node at /a/b (get_data)");
        let e = Error::from_code(Code::NodeExists, "create", "/a", "");
        assert_eq!(e.to_string(), "node /a already exists (create)");
        let e = Error::from_code(Code::BadVersion, "set_data", "/a", "");
        assert_eq!(e.to_string(), "bad version for /a (set_data)");
        let e = Error::from_code(Code::BadArguments, "create", "/a", "ttl too large");
        assert_eq!(
            e.to_string(),
            "bad arguments for /a (create): ttl too large"
        );
        let e = Error::from_code(Code::SystemError, "sync", "/a", "boom");
        assert!(matches!(
            e,
            Error::Other {
                code: Code::SystemError,
                ..
            }
        ));
        assert_eq!(e.to_string(), "sync /a failed with SystemError: boom");
        for (code, variant) in [
            (Code::NotEmpty, "NotEmpty"),
            (Code::NoChildrenForEphemerals, "NoChildrenForEphemerals"),
            (Code::NoAuth, "NoAuth"),
            (Code::InvalidAcl, "InvalidAcl"),
            (Code::SessionExpired, "SessionExpired"),
            (Code::SessionMoved, "SessionMoved"),
            (Code::Unimplemented, "Unimplemented"),
            (Code::NoWatcher, "NoWatcher"),
            (Code::QuotaExceeded, "QuotaExceeded"),
            (Code::Throttled, "Throttled"),
            (Code::OperationTimeout, "OperationTimeout"),
            (Code::ConnectionLoss, "ConnectionLoss"),
        ] {
            let e = Error::from_code(code, "op", "/p", "");
            assert!(format!("{e:?}").starts_with(variant), "{e:?}");
        }
    }

    #[test]
    fn client_side_errors_have_codes() {
        assert_eq!(Error::Closed.code(), Code::SessionExpired);
        assert_eq!(Error::Timeout.code(), Code::ConnectionLoss);
        assert_eq!(Error::Transport("x".into()).code(), Code::ConnectionLoss);
        let invalid = zk_proto::path::validate("a", false).expect_err("invalid");
        assert_eq!(Error::from(invalid).code(), Code::BadArguments);
        let multi = Error::Multi {
            index: 1,
            code: Code::BadVersion,
            results: vec![Code::Ok, Code::BadVersion, Code::RuntimeInconsistency],
        };
        assert_eq!(multi.code(), Code::BadVersion);
        assert_eq!(multi.to_string(), "multi failed at op 1 with BadVersion");
        assert!(Error::ConnectionLoss {
            op: "sync",
            path: "/".into()
        }
        .is_retryable());
        assert!(!Error::Closed.is_retryable());
    }
}
