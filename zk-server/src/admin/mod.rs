//! Operator endpoints: admin HTTP (`/health`, `/metrics`, `/status`), four-letter words
//! on the client port, and the counters behind them.

pub mod fourlw;
pub mod http;
pub mod metrics;
pub mod status;
