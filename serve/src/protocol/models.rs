//! `GET /v1/models` and vLLM's LoRA endpoints.

use serde::{Deserialize, Serialize};

/// The served models: the base and each adapter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelCard>,
}

/// One served model, as vLLM lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCard {
    /// The name the `model` field takes.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Seconds since the Unix epoch when it was loaded.
    pub created: u64,
    /// `fastlibra`.
    pub owned_by: &'static str,
    /// The checkpoint or adapter folder it came from.
    pub root: String,
    /// The base model's name for an adapter; null for the base.
    pub parent: Option<String>,
    /// Longest prompt plus completion (the base model only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u32>,
}

/// `POST /v1/load_lora_adapter`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LoadLoraRequest {
    /// The served name (the `model` field that will select it).
    pub lora_name: String,
    /// The PEFT folder.
    pub lora_path: String,
}

/// `POST /v1/unload_lora_adapter`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UnloadLoraRequest {
    /// The served name.
    pub lora_name: String,
}
