//! The one error type of the recipes.

use std::time::Duration;

use thiserror::Error;

/// The result type of every recipe operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything a recipe can fail with.
///
/// Client failures keep the client's error (which names the operation and the path);
/// the session ending is always reported as [`Error::Expired`] so callers need one match
/// arm for "this client can do nothing more".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A fenced write or a token was rejected: the holder (lock, lease, leadership) whose
    /// token it carried is no longer the holder, or a newer holder's token was already
    /// accepted. Nothing was applied.
    #[error("fenced: token {token} rejected: {reason}")]
    Fenced {
        /// The rejected fencing token.
        token: u64,
        /// Why it was rejected (the holder node is gone, a newer token was seen, ...).
        reason: String,
    },
    /// The session expired (or was closed) while the recipe needed it: held locks and
    /// leaderships are gone, waiters were dropped from their queues. Make a new client.
    #[error("the session ended (expired or closed) during {during}")]
    Expired {
        /// What the recipe was doing.
        during: &'static str,
    },
    /// Our own node (a waiter's or a holder's) disappeared while the session is alive:
    /// someone else deleted it. The wait, or the hold, is over.
    #[error("our node {path} was deleted by someone else")]
    Lost {
        /// The node that disappeared.
        path: String,
    },
    /// A bounded wait ran out; whatever the recipe had created for it was removed.
    #[error("timed out after {after:?} during {during}")]
    Timeout {
        /// What was waited for.
        during: &'static str,
        /// The bound that ran out.
        after: Duration,
    },
    /// A value could not be encoded or decoded (serde payloads of registry, config,
    /// election identities, ...).
    #[error("cannot {action} the value at {path}: {message}")]
    Codec {
        /// `"encode"` or `"decode"`.
        action: &'static str,
        /// The znode the value belongs to.
        path: String,
        /// The serde error, as text (keeps this enum `Clone`).
        message: String,
    },
    /// The recipe (or its client source) was closed by the caller.
    #[error("the recipe or its client was closed")]
    Closed,
    /// A node's data could not be decoded into the expected type (config, registry).
    #[error("cannot decode the data of {path}: {message}")]
    Decode { path: String, message: String },
    /// A value could not be encoded.
    #[error("cannot encode a value for {path}: {message}")]
    Encode { path: String, message: String },
    /// The connection broke while a non-idempotent write was in flight and its outcome
    /// can no longer be determined (the node was written again since).
    #[error("connection lost during {op} on {path}; the outcome is unknown")]
    Indeterminate { op: &'static str, path: String },
    /// An argument was rejected before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Any other failure of the client (it names the operation and the path).
    #[error(transparent)]
    Client(zk_client::Error),
}

impl Error {
    /// True when the session is gone ([`Error::Expired`]): nothing on this client will
    /// work again.
    pub fn is_expired(&self) -> bool {
        matches!(self, Error::Expired { .. })
    }

    /// True when the session is gone or the recipe was closed: nothing more can be done
    /// with this client.
    pub fn is_session_gone(&self) -> bool {
        matches!(self, Error::Expired { .. } | Error::Closed)
    }

    /// True when the failure may be transient (a lost connection; the outcome of the
    /// failed step is unknown).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Client(e) if e.is_retryable())
    }

    /// The client error, mapping the end of the session to [`Error::Expired`] with
    /// `during` as context.
    pub fn from_client(during: &'static str, error: zk_client::Error) -> Error {
        match error {
            zk_client::Error::SessionExpired { .. } | zk_client::Error::Closed => {
                Error::Expired { during }
            }
            other => Error::Client(other),
        }
    }
}

impl From<zk_client::Error> for Error {
    /// Maps `SessionExpired` and `Closed` to [`Error::Expired`]; everything else to
    /// [`Error::Client`].
    fn from(error: zk_client::Error) -> Error {
        Error::from_client("a recipe operation", error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_end_maps_to_expired() {
        let e: Error = zk_client::Error::Closed.into();
        assert!(e.is_expired());
        let e: Error = zk_client::Error::SessionExpired {
            op: "create",
            path: "/a".into(),
        }
        .into();
        assert!(e.is_expired());
        let e: Error = zk_client::Error::ConnectionLoss {
            op: "create",
            path: "/a".into(),
        }
        .into();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("/a"));
    }
}
