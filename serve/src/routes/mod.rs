//! The endpoints, and the router that joins them with the auth layer.

mod chat;
mod completions;
mod lora;
mod models;
mod ops;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::limits;
use crate::state::AppState;

/// Every route: `/v1/…` behind the API key, `/health` and `/metrics` open.
pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/completions", post(completions::handle))
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/models", get(models::list))
        .route("/v1/load_lora_adapter", post(lora::load))
        .route("/v1/unload_lora_adapter", post(lora::unload))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_key,
        ));
    Router::new()
        .merge(v1)
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .with_state(state)
}

/// A request's body, within the size and time limits.
async fn body(state: &AppState, request: Request<Body>) -> Result<axum::body::Bytes, ApiError> {
    let (parts, body) = request.into_parts();
    let o = &state.options;
    limits::read_body(&parts.headers, body, o.body_bytes_max, o.read_timeout).await
}

/// Counts a refusal in `/metrics` and passes it on.
fn refuse(state: &AppState, err: ApiError) -> ApiError {
    state.metrics.refused(err.status.as_u16());
    err
}
