//! The errors of a chaos run (setting it up; a failed check is a report, not an error).

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// What can stop a chaos run from running.
#[derive(Debug, Error)]
pub enum ChaosError {
    /// A local I/O step failed (temp dirs, configs, logs, spawning).
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The server binary is not there.
    #[error("no zk-server binary at {0} (build it with `cargo build -p zk-server`, or pass --server-bin)")]
    NoServer(PathBuf),
    /// Building the server binary failed.
    #[error("building zk-server failed: {0}")]
    Build(String),
    /// The ensemble did not get a serving leader in time.
    #[error("the ensemble was not healthy after {after:?}: {detail}")]
    Unhealthy {
        /// How long it was given.
        after: Duration,
        /// What it looked like.
        detail: String,
    },
    /// A client step the harness needs (setup, final reads) kept failing.
    #[error("{what}: {source}")]
    Client {
        /// The step.
        what: String,
        /// The last client error.
        source: zk_client::Error,
    },
    /// A bad command-line value.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl ChaosError {
    /// An I/O error during `what`.
    pub fn io(what: &'static str, source: std::io::Error) -> ChaosError {
        ChaosError::Io { what, source }
    }
}
