//! The error type of the recipes: a client error, or something only a recipe can say
//! (the session is gone, a wait timed out, a stored value does not decode).

use thiserror::Error;

/// The result type of the recipes.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything a recipe can fail with.
///
/// `zk_client::Error::SessionExpired` and `zk_client::Error::Closed` are turned into
/// [`Error::Expired`] and [`Error::Closed`], so callers can tell "the session is gone"
/// from every other client error without looking inside.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A client operation failed (see `zk_client::Error`).
    #[error(transparent)]
    Client(zk_client::Error),
    /// The session expired: its ephemeral nodes (and with them any registration, barrier
    /// membership or claim) are gone. Recipes built on a `ClientSource` made from a
    /// `ClientBuilder` recover by themselves; the others report this and stop.
    #[error("the session expired")]
    Expired,
    /// The client was closed (by the caller, or the recipe was closed).
    #[error("the client is closed")]
    Closed,
    /// A bounded wait ran out.
    #[error("timed out")]
    Timeout,
    /// A node's data could not be decoded into the expected type.
    #[error("cannot decode the data of {path}: {message}")]
    Decode { path: String, message: String },
    /// A value could not be encoded.
    #[error("cannot encode a value for {path}: {message}")]
    Encode { path: String, message: String },
    /// The connection broke while a non-idempotent write was in flight and what happened
    /// to it cannot be determined any more (the node was written again since).
    #[error("connection lost during {op} on {path}; the outcome is unknown")]
    Indeterminate { op: &'static str, path: String },
    /// The caller passed something the recipe cannot work with.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<zk_client::Error> for Error {
    fn from(e: zk_client::Error) -> Self {
        match e {
            zk_client::Error::SessionExpired { .. } => Error::Expired,
            zk_client::Error::Closed => Error::Closed,
            other => Error::Client(other),
        }
    }
}

impl Error {
    /// True for [`Error::Expired`] and [`Error::Closed`]: this session can do no more.
    pub fn is_session_gone(&self) -> bool {
        matches!(self, Error::Expired | Error::Closed)
    }
}
