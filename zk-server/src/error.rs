//! Errors that stop a server from starting or running (not client request errors: those
//! are ZooKeeper codes in replies).

use thiserror::Error;

/// A server-level failure.
#[derive(Debug, Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error("configuration: {message}")]
    Config { message: String },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be prepared or read.
    #[error("data directory {path}: {message}")]
    DataDir { path: String, message: String },
    /// The log or snapshots could not be opened (corruption is reported here, with the
    /// file and offset).
    #[error("storage: {0}")]
    Storage(String),
    /// TLS or peer-authentication settings could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Consensus failed to start or stopped.
    #[error("raft: {0}")]
    Raft(String),
}
