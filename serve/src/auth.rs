//! `--api-key`: every `/v1/…` request must carry `Authorization: Bearer KEY` (as vLLM asks;
//! `/health` and `/metrics` stay open for probes and scrapers).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether `authorization` (the header's value) carries `key`, compared in constant time.
pub fn authorized(authorization: Option<&[u8]>, key: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some(token) = value.strip_prefix(b"Bearer ") else {
        return false;
    };
    token.ct_eq(key.as_bytes()).into()
}

/// The middleware: 401 with an OpenAI-style body unless the key matches.
pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(key) = &state.options.api_key {
        let value = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !authorized(value, key) {
            state.metrics.refused(401);
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::authorized;

    #[test]
    fn only_the_exact_bearer_key_passes() {
        assert!(authorized(Some(b"Bearer k3y"), "k3y"));
        for bad in [
            &b"Bearer k3"[..],
            b"Bearer k3yy",
            b"k3y",
            b"bearer k3y",
            b"",
        ] {
            assert!(!authorized(Some(bad), "k3y"), "{bad:?}");
        }
        assert!(!authorized(None, "k3y"));
    }
}
