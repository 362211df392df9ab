//! `GET /health`, `GET /metrics`, and the answer to any other path.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// 200 while serving; 503 once shutdown has begun or a part of the runtime has stopped
/// serving (a shard that panicked), so a load balancer stops sending.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.is_draining() {
        return ApiError::unavailable("the server is shutting down", None).into_response();
    }
    if let Err(why) = state.backend.health() {
        return ApiError::unavailable(why, None).into_response();
    }
    StatusCode::OK.into_response()
}

/// The Prometheus text exposition (the runtime's snapshot is taken off the async threads).
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let metrics = state.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => ApiError::internal(format!("rendering the metrics: {err}")).into_response(),
    }
}

/// 404 with an OpenAI-style body for any unknown path.
pub async fn not_found(uri: Uri) -> Response {
    let mut err = ApiError::not_found(format!("no endpoint at {}", uri.path()));
    err.param = None;
    err.into_response()
}
