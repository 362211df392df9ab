//! Hugging Face folders of a `LlamaForCausalLM`: `config.json` and `model.safetensors`, or
//! shards `model-0000i-of-0000n.safetensors` with `model.safetensors.index.json`; tensors in
//! F32 (mapped, zero-copy), F16 or BF16 (widened at load).
//!
//! ```text
//!   folder/config.json ──► parse_config ──► LlamaConfig ──► expected tensors + shapes
//!   folder/*.safetensors ──► Shards (mmap) ──► check all, then load all ──► Checkpoint
//!   write_hf(folder, config, tensors, dtype, shards) ◄── fixtures, conversions
//! ```

mod config;
mod shards;
mod write;

use std::collections::BTreeMap;
use std::path::Path;

pub use config::{CONFIG_FILE, config_json, parse_config};
pub use shards::{INDEX_FILE, WEIGHTS_FILE};
pub use write::write_hf;

use self::shards::Shards;
use super::error::{CheckpointError, Result};
use super::{Checkpoint, Format, LlamaConfig, Tensor, load, names};

/// The folder's config and mapped weights, every tensor checked for presence, shape and
/// dtype (nothing converted).
fn checked(folder: &Path) -> Result<(LlamaConfig, Shards)> {
    let config_path = folder.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(CheckpointError::NotACheckpoint {
            path: folder.to_path_buf(),
            reason: format!("no {CONFIG_FILE} in the folder"),
        });
    }
    let text = std::fs::read_to_string(&config_path).map_err(|e| CheckpointError::Io {
        path: config_path.clone(),
        message: e.to_string(),
    })?;
    let folder_name = folder
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy());
    let config = parse_config(&text, &config_path, &folder_name)?;
    let shards = Shards::open(folder)?;
    if let Some(bias) = shards.names().find(|n| n.ends_with(".bias")) {
        return Err(CheckpointError::Unsupported {
            path: folder.to_path_buf(),
            field: format!("tensor `{bias}`"),
            reason: "biases".into(),
        });
    }
    for e in &names::expected_tensors(&config) {
        shards.check(e)?;
    }
    Ok((config, shards))
}

/// The config of a Hugging Face folder, after checking its tensors as [`open`] does.
pub(super) fn read_config(folder: &Path) -> Result<LlamaConfig> {
    checked(folder).map(|(config, _)| config)
}

/// Opens a Hugging Face folder as a checkpoint.
pub(super) fn open(folder: &Path) -> Result<Checkpoint> {
    let (config, shards) = checked(folder)?;
    let expected = names::expected_tensors(&config);
    let tensors = load::parallel_map(&expected, |e| shards.load(e))?;
    let tensors: BTreeMap<String, Tensor> =
        expected.into_iter().map(|e| e.name).zip(tensors).collect();
    Ok(Checkpoint::new(
        config,
        Format::HuggingFace,
        folder,
        None,
        tensors,
    ))
}
