//! Admin HTTP: `GET /health` answers 200 `ok` while this node has a leader and serves,
//! 503 otherwise.

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
        .with_state(pipeline)
}

async fn health(State(p): State<Arc<Pipeline>>) -> (StatusCode, String) {
    let metrics = p.raft.metrics().borrow().clone();
    match metrics.current_leader {
        Some(leader) => (
            StatusCode::OK,
            format!(
                "ok\nnode {} leader {} applied zxid {}\n",
                p.node_id(),
                leader,
                p.shared.applied_zxid()
            ),
        ),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no leader\n".to_string()),
    }
}
