//! `config.json` of a Hugging Face `LlamaForCausalLM`, read field by field so every error
//! names the field.

use std::path::Path;

use serde_json::{Map, Value};

use crate::checkpoint::LlamaConfig;
use crate::checkpoint::config::FieldNames;
use crate::checkpoint::error::{CheckpointError, Result};

/// The config file's name inside the folder.
pub const CONFIG_FILE: &str = "config.json";

const NAMES: FieldNames = FieldNames {
    layers: "num_hidden_layers",
    hidden: "hidden_size",
    heads: "num_attention_heads",
    kv_heads: "num_key_value_heads",
    head_dim: "head_dim",
    ffn: "intermediate_size",
    vocab: "vocab_size",
    rope_theta: "rope_theta",
    rms_eps: "rms_norm_eps",
    context_len: "max_position_embeddings",
};

struct Fields<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn invalid(&self, field: &str, reason: String) -> CheckpointError {
        CheckpointError::InvalidField {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason,
        }
    }

    fn unsupported(&self, field: &str, reason: String) -> CheckpointError {
        CheckpointError::Unsupported {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason,
        }
    }

    /// The field, with JSON `null` read as absent (transformers writes `"head_dim": null`).
    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn usize(&self, field: &str) -> Result<Option<usize>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let n = v.as_u64().and_then(|n| usize::try_from(n).ok());
        n.map(Some)
            .ok_or_else(|| self.invalid(field, format!("{v}, expected a non-negative integer")))
    }

    fn required(&self, field: &str) -> Result<usize> {
        self.usize(field)?
            .ok_or_else(|| CheckpointError::MissingField {
                path: self.path.to_path_buf(),
                field: field.to_string(),
            })
    }

    fn f32_or(&self, field: &str, default: f32) -> Result<f32> {
        let Some(v) = self.get(field) else {
            return Ok(default);
        };
        v.as_f64()
            .map(|v| v as f32)
            .ok_or_else(|| self.invalid(field, format!("{v}, expected a number")))
    }

    fn bool_or(&self, field: &str, default: bool) -> Result<bool> {
        let Some(v) = self.get(field) else {
            return Ok(default);
        };
        v.as_bool()
            .ok_or_else(|| self.invalid(field, format!("{v}, expected true or false")))
    }

    fn str(&self, field: &str) -> Result<Option<&str>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        v.as_str()
            .map(Some)
            .ok_or_else(|| self.invalid(field, format!("{v}, expected a string")))
    }
}

/// Parses the text of `config.json` (at `path`, for messages). `name` is the model's name when
/// the config has no `_name_or_path`.
pub fn parse_config(text: &str, path: &Path, name: &str) -> Result<LlamaConfig> {
    let value: Value = serde_json::from_str(text).map_err(|e| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        field: "JSON".into(),
        reason: e.to_string(),
    })?;
    let Some(map) = value.as_object() else {
        return Err(CheckpointError::Corrupt {
            path: path.to_path_buf(),
            field: "JSON".into(),
            reason: "the top level is not an object".into(),
        });
    };
    let f = Fields { path, map };
    check_architecture(&f)?;
    refuse_unsupported(&f)?;
    let hidden = f.required(NAMES.hidden)?;
    let heads = f.required(NAMES.heads)?;
    let config = LlamaConfig {
        layers: f.required(NAMES.layers)?,
        hidden,
        heads,
        kv_heads: f.usize(NAMES.kv_heads)?.unwrap_or(heads),
        head_dim: f
            .usize(NAMES.head_dim)?
            .unwrap_or(hidden.checked_div(heads).unwrap_or(0)),
        ffn: f.required(NAMES.ffn)?,
        vocab: f.required(NAMES.vocab)?,
        // transformers' LlamaConfig defaults.
        rope_theta: f.f32_or(NAMES.rope_theta, 10_000.0)?,
        rms_eps: f.f32_or(NAMES.rms_eps, 1e-6)?,
        context_len: f.usize(NAMES.context_len)?.unwrap_or(2048),
        tied_embeddings: f.bool_or("tie_word_embeddings", false)?,
        name: f
            .str("_name_or_path")?
            .filter(|s| !s.is_empty())
            .unwrap_or(name)
            .to_string(),
    };
    config.validate(path, &NAMES)?;
    Ok(config)
}

fn check_architecture(f: &Fields<'_>) -> Result<()> {
    if let Some(archs) = f.get("architectures") {
        let names: Vec<&str> = archs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !names.contains(&"LlamaForCausalLM") {
            let reason = format!("{archs}; only LlamaForCausalLM is");
            return Err(f.unsupported("architectures", reason));
        }
    }
    match f.str("model_type")? {
        None | Some("llama") => Ok(()),
        Some(other) => Err(f.unsupported("model_type", format!("`{other}`; only `llama` is"))),
    }
}

/// Fields that change the computation in ways this crate does not implement.
fn refuse_unsupported(f: &Fields<'_>) -> Result<()> {
    if let Some(scaling) = f.get("rope_scaling") {
        let kind = scaling.get("rope_type").or_else(|| scaling.get("type"));
        if kind.and_then(Value::as_str) != Some("default") {
            let kind = kind.map_or_else(|| scaling.to_string(), Value::to_string);
            return Err(f.unsupported("rope_scaling", format!("RoPE scaling {kind}; only none is")));
        }
    }
    for field in ["attention_bias", "mlp_bias"] {
        if f.bool_or(field, false)? {
            return Err(f.unsupported(field, "biases in the projections".into()));
        }
    }
    match f.str("hidden_act")? {
        None | Some("silu") => {}
        Some(other) => {
            return Err(f.unsupported("hidden_act", format!("`{other}`; only `silu` is")));
        }
    }
    let rotary = f.get("partial_rotary_factor").and_then(Value::as_f64);
    if let Some(rotary) = rotary.filter(|&r| r != 1.0) {
        return Err(f.unsupported("partial_rotary_factor", format!("{rotary}; only 1 is")));
    }
    Ok(())
}

/// The `config.json` text of a `LlamaForCausalLM` with this config (transformers' field names;
/// `torch_dtype` as given).
pub fn config_json(config: &LlamaConfig, torch_dtype: &str) -> String {
    let value = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "_name_or_path": config.name,
        "num_hidden_layers": config.layers,
        "hidden_size": config.hidden,
        "num_attention_heads": config.heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim,
        "intermediate_size": config.ffn,
        "vocab_size": config.vocab,
        "rope_theta": config.rope_theta,
        "rms_norm_eps": config.rms_eps,
        "max_position_embeddings": config.context_len,
        "tie_word_embeddings": config.tied_embeddings,
        "hidden_act": "silu",
        "rope_scaling": null,
        "torch_dtype": torch_dtype,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
