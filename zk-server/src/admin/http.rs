//! Admin HTTP: `GET /health` answers 200 `ok` while this node serves clients, 503
//! otherwise; `GET /status` (JSON) describes this node and the ensemble.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::pipeline::Pipeline;

/// The admin router.
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(super::status::status))
        .with_state(pipeline)
}

async fn health(State(p): State<Arc<Pipeline>>) -> (StatusCode, String) {
    let metrics = p.raft.metrics().borrow().clone();
    match metrics.current_leader.filter(|_| p.shared.is_serving()) {
        Some(leader) => (
            StatusCode::OK,
            format!(
                "ok\nnode {} leader {} applied zxid {}\n",
                p.node_id(),
                leader,
                p.shared.applied_zxid()
            ),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not serving: no leader or no quorum\n".to_string(),
        ),
    }
}
