//! `adapter_config.json`: the fields of PEFT's `LoraConfig` this loader reads and writes.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{PeftError, Result};
use crate::model::{LoraTarget, LoraTargets};

/// The config file's name inside an adapter folder.
pub const CONFIG_FILE: &str = "adapter_config.json";

/// The fields of `adapter_config.json` fastlibra uses; others are ignored when reading.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterConfig {
    /// `r`: the LoRA rank.
    pub rank: u32,
    /// `lora_alpha`.
    pub alpha: f32,
    /// `target_modules`: a list of module names (`q_proj`, …) or `"all-linear"`.
    pub targets: LoraTargets,
    /// `base_model_name_or_path` (empty when absent or null).
    pub base_model: String,
    /// `task_type`, e.g. `CAUSAL_LM`, if given.
    pub task_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TargetModules {
    One(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
struct RawConfig {
    r: u32,
    lora_alpha: f64,
    target_modules: TargetModules,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    peft_type: String,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    fan_in_fan_out: Option<bool>,
    #[serde(default)]
    task_type: Option<String>,
}

impl AdapterConfig {
    /// Reads `dir/adapter_config.json` (see [`AdapterConfig::parse_bytes`]).
    pub fn read(dir: &Path) -> Result<AdapterConfig> {
        let path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|source| PeftError::Io {
            path: path.clone(),
            source,
        })?;
        AdapterConfig::parse_bytes(&bytes, &path)
    }

    /// Parses the raw bytes of a config: text that is not UTF-8 is a [`PeftError::Json`];
    /// `path` is only used in errors.
    pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<AdapterConfig> {
        let text = std::str::from_utf8(bytes).map_err(|e| PeftError::Json {
            path: path.to_path_buf(),
            message: format!("not UTF-8: {e}"),
        })?;
        AdapterConfig::parse(text, path)
    }

    /// Parses the JSON text of a config; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<AdapterConfig> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| PeftError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let field = |field: &'static str, message: String| PeftError::ConfigField {
            path: path.to_path_buf(),
            field,
            message,
        };
        if raw.peft_type != "LORA" {
            return Err(field(
                "peft_type",
                format!("`{}`; expected `LORA`", raw.peft_type),
            ));
        }
        if raw.r == 0 {
            return Err(field("r", "must be positive".into()));
        }
        let alpha = raw.lora_alpha as f32;
        if !alpha.is_finite() {
            return Err(field(
                "lora_alpha",
                format!("{} is not finite", raw.lora_alpha),
            ));
        }
        if let Some(bias) = raw.bias.as_deref().filter(|b| *b != "none") {
            return Err(field("bias", format!("`{bias}`; only `none` is supported")));
        }
        if raw.fan_in_fan_out == Some(true) {
            return Err(field(
                "fan_in_fan_out",
                "true (Conv1D layout) is not supported by Llama-shaped models".into(),
            ));
        }
        let targets = match raw.target_modules {
            TargetModules::One(s) if s == "all-linear" => LoraTargets::ALL_LINEAR,
            TargetModules::One(s) => {
                return Err(field(
                    "target_modules",
                    format!("`{s}`; expected a list of module names or `all-linear`"),
                ));
            }
            TargetModules::List(names) => LoraTargets::from_names(&names).map_err(|bad| {
                field(
                    "target_modules",
                    format!("unknown module `{bad}`; valid: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"),
                )
            })?,
        };
        if targets.is_empty() {
            return Err(field("target_modules", "empty".into()));
        }
        Ok(AdapterConfig {
            rank: raw.r,
            alpha,
            targets,
            base_model: raw.base_model_name_or_path.unwrap_or_default(),
            task_type: raw.task_type,
        })
    }

    /// The JSON PEFT's `LoraConfig.save_pretrained` writes for this config (with PEFT's
    /// defaults for the fields fastlibra does not use), pretty-printed.
    pub fn to_json(&self) -> String {
        let modules: Vec<String> = self.targets.iter().map(module_name).collect();
        let value = json!({
            "alpha_pattern": {},
            "base_model_name_or_path": self.base_model,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "layers_pattern": Value::Null,
            "layers_to_transform": Value::Null,
            "lora_alpha": self.alpha,
            "lora_dropout": 0.0,
            "modules_to_save": Value::Null,
            "peft_type": "LORA",
            "r": self.rank,
            "rank_pattern": {},
            "revision": Value::Null,
            "target_modules": modules,
            "task_type": self.task_type.as_deref().unwrap_or("CAUSAL_LM"),
            "use_dora": false,
            "use_rslora": false,
        });
        // A `Value` built by `json!` always serializes.
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

/// PEFT's module name of a target: `q_proj`, …, `down_proj`.
pub fn module_name(target: LoraTarget) -> String {
    format!("{}_proj", target.name())
}
