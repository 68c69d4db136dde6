//! Operator endpoints: admin HTTP (`/health`; metrics and status come later).

pub mod http;
