//! Shared helpers for the integration tests: start real servers on loopback.
