//! Operator endpoints: admin HTTP (`/health`, `/status`).

pub mod http;
pub mod status;
