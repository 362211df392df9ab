//! Writing a Hugging Face folder: `config.json` and safetensors, in one file or in shards.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;

use super::config::{CONFIG_FILE, config_json};
use super::shards::{INDEX_FILE, WEIGHTS_FILE};
use crate::checkpoint::error::{CheckpointError, Result};
use crate::checkpoint::{LlamaConfig, Tensor};
use crate::peft::WeightDtype;

/// Writes `folder/config.json` for `config` and the tensors (canonical names, a vector as
/// 1-D) in `dtype`: into `model.safetensors` when `shards <= 1`, else split in file order
/// into `shards` files `model-0000i-of-0000n.safetensors` with `model.safetensors.index.json`,
/// as `transformers`' `save_pretrained` lays them out.
pub fn write_hf(
    folder: &Path,
    config: &LlamaConfig,
    tensors: &[(String, Tensor)],
    dtype: WeightDtype,
    shards: usize,
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| CheckpointError::Io {
            path,
            message: e.to_string(),
        }
    };
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let torch_dtype = match dtype {
        WeightDtype::F32 => "float32",
        WeightDtype::F16 => "float16",
        WeightDtype::BF16 => "bfloat16",
    };
    let config_path = folder.join(CONFIG_FILE);
    std::fs::write(&config_path, config_json(config, torch_dtype)).map_err(io(&config_path))?;
    let shards = shards.clamp(1, tensors.len().max(1));
    let per_shard = tensors.len().div_ceil(shards).max(1);
    let mut weight_map = serde_json::Map::new();
    let mut total_bytes = 0usize;
    for (i, chunk) in tensors.chunks(per_shard).enumerate() {
        let file = if shards == 1 {
            WEIGHTS_FILE.to_string()
        } else {
            format!("model-{:05}-of-{shards:05}.safetensors", i + 1)
        };
        total_bytes += write_shard(&folder.join(&file), chunk, dtype)?;
        for (name, _) in chunk {
            weight_map.insert(name.clone(), file.clone().into());
        }
    }
    if shards > 1 {
        let index = serde_json::json!({
            "metadata": { "total_size": total_bytes },
            "weight_map": weight_map,
        });
        let index_path = folder.join(INDEX_FILE);
        let text = serde_json::to_string_pretty(&index).unwrap_or_default();
        std::fs::write(&index_path, text).map_err(io(&index_path))?;
    }
    Ok(())
}

/// Writes one safetensors file; returns the bytes of tensor data in it.
fn write_shard(path: &Path, tensors: &[(String, Tensor)], dtype: WeightDtype) -> Result<usize> {
    let bad = |message: String| CheckpointError::Io {
        path: path.to_path_buf(),
        message,
    };
    let buffers: Vec<(&str, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let shape = if t.rows == 1 {
                vec![t.cols]
            } else {
                vec![t.rows, t.cols]
            };
            let mut bytes = Vec::with_capacity(t.as_slice().len() * dtype.bytes());
            t.as_slice()
                .iter()
                .for_each(|&v| dtype.encode(v, &mut bytes));
            (name.as_str(), shape, bytes)
        })
        .collect();
    let data_bytes = buffers.iter().map(|(_, _, b)| b.len()).sum();
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(dtype.to_safetensors(), shape.clone(), bytes)
                .map(|view| (*name, view))
                .map_err(|e| bad(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), path).map_err(|e| bad(e.to_string()))?;
    Ok(data_bytes)
}
