//! vLLM's `POST /v1/load_lora_adapter` and `POST /v1/unload_lora_adapter`. Loading a name
//! again with new weights makes a new version of it: KV computed under the old weights is
//! never served under the new ones.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::parse;
use crate::state::AppState;

/// Loads (or reloads) an adapter; the runtime reads and checks its files off the async
/// threads.
pub async fn load(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let result = async {
        let body = super::body(&state, request).await?;
        let req = parse::load_lora(&body)?;
        let backend = state.backend.clone();
        let name = req.lora_name.clone();
        let path = PathBuf::from(&req.lora_path);
        let listing = tokio::task::spawn_blocking(move || backend.load_adapter(&name, &path))
            .await
            .map_err(|e| ApiError::internal(format!("loading the adapter: {e}")))??;
        Ok::<_, ApiError>(format!(
            "Success: LoRA adapter '{}' added successfully (version {}, rank {}).",
            listing.name, listing.version, listing.rank
        ))
    }
    .await;
    match result {
        Ok(text) => text.into_response(),
        Err(err) => super::refuse(&state, err).into_response(),
    }
}

/// Unloads an adapter: new requests for it get 404; running ones finish.
pub async fn unload(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let result = async {
        let body = super::body(&state, request).await?;
        let req = parse::unload_lora(&body)?;
        let backend = state.backend.clone();
        let name = req.lora_name.clone();
        tokio::task::spawn_blocking(move || backend.unload_adapter(&name))
            .await
            .map_err(|e| ApiError::internal(format!("unloading the adapter: {e}")))??;
        Ok::<_, ApiError>(format!(
            "Success: LoRA adapter '{}' removed successfully.",
            req.lora_name
        ))
    }
    .await;
    match result {
        Ok(text) => text.into_response(),
        Err(err) => super::refuse(&state, err).into_response(),
    }
}
