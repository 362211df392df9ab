//! Writing an adapter as PEFT's `save_pretrained` does, so PEFT (and vLLM, S-LoRA, …) load it.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;

use super::adapter::{Adapter, Matrix};
use super::config::{AdapterConfig, CONFIG_FILE};
use super::error::{PeftError, Result};
use super::load::WEIGHTS_FILE;
use super::names::tensor_name;

/// Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors` (creating `dir`), with
/// `base_model_name_or_path = model_name`, tensors in the adapter's dtype and the safetensors
/// metadata `{"format": "pt"}`.
pub fn write_peft(dir: &Path, adapter: &Adapter, model_name: &str) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PeftError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config = AdapterConfig {
        rank: adapter.rank(),
        alpha: adapter.alpha(),
        targets: adapter.targets(),
        base_model: model_name.to_string(),
        task_type: Some("CAUSAL_LM".into()),
    };
    let config_path = dir.join(CONFIG_FILE);
    std::fs::write(&config_path, config.to_json()).map_err(io(&config_path))?;

    let dtype = adapter.dtype();
    let rank = adapter.rank() as usize;
    let mut buffers = Vec::new();
    for layer in 0..adapter.layer_count() {
        for pair in adapter.layer(layer) {
            let layer_id = u32::try_from(layer).unwrap_or(u32::MAX);
            for (matrix, values, shape) in [
                (Matrix::A, pair.a(), vec![rank, pair.input()]),
                (Matrix::B, pair.b(), vec![pair.output(), rank]),
            ] {
                let mut bytes = Vec::with_capacity(values.len() * dtype.bytes());
                for &v in values {
                    dtype.encode(v, &mut bytes);
                }
                buffers.push((tensor_name(layer_id, pair.target(), matrix), shape, bytes));
            }
        }
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let bad = |message: String| PeftError::Safetensors {
        path: weights_path.clone(),
        message,
    };
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(dtype.to_safetensors(), shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| bad(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&weights_path, bytes).map_err(io(&weights_path))
}
