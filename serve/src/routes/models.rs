//! `GET /v1/models`: the base model and each adapter with the base as its parent, as vLLM
//! lists them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::protocol::{ModelCard, ModelList};
use crate::state::AppState;

/// Lists what the `model` field may name.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    let info = state.backend.model();
    let mut data = vec![ModelCard {
        id: info.served_name.clone(),
        object: "model",
        created: info.created_unix_s,
        owned_by: "fastlibra",
        root: info.path.display().to_string(),
        parent: None,
        max_model_len: Some(info.max_model_len),
    }];
    data.extend(state.backend.adapters().into_iter().map(|a| ModelCard {
        id: a.name,
        object: "model",
        created: a.created_unix_s,
        owned_by: "fastlibra",
        root: a.path.display().to_string(),
        parent: Some(info.served_name.clone()),
        max_model_len: None,
    }));
    Json(ModelList {
        object: "list",
        data,
    })
}
