//! Async client for zk-server (work in progress).
