//! Loading an adapter folder as PEFT writes it, checked tensor by tensor against a model.

use std::collections::HashMap;
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::TensorView;

use super::adapter::{Adapter, AdapterShape, LoraPair, Matrix, dims};
use super::config::{AdapterConfig, CONFIG_FILE};
use super::dtype::WeightDtype;
use super::error::{PeftError, Result};
use super::names::{parse_tensor_name, tensor_name};
use crate::model::{LoraTarget, ModelSpec};

/// The weights file's name inside an adapter folder.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

type Key = (u32, LoraTarget, Matrix);

/// The tensors of a file by `(layer, target, matrix)`, with their names.
type Index<'a> = HashMap<Key, (String, TensorView<'a>)>;

/// Loads `dir/adapter_config.json` and `dir/adapter_model.safetensors` and checks them
/// against `model`: every tensor of every layer and configured target present, no other
/// tensor, shapes `[r, in]` for `lora_A` and `[out, r]` for `lora_B`, one dtype among F32, F16
/// and BF16. Any problem is a [`PeftError`] naming the file and tensor.
pub fn load_peft(dir: &Path, model: &ModelSpec) -> Result<Adapter> {
    let config = AdapterConfig::read(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(|source| PeftError::Io {
        path: path.clone(),
        source,
    })?;
    from_config_and_weights(config, &bytes, &path, model)
}

/// [`load_peft`] on the contents of the two files instead of a folder: the same parsing and
/// the same checks, with errors naming the bare file names. Hostile input (a header that
/// claims huge tensors, offsets past the end) is an error before anything is allocated for
/// it: the safetensors reader checks every offset against the data, and a tensor is only
/// decoded once its shape matches the model.
pub fn load_peft_bytes(config_json: &[u8], weights: &[u8], model: &ModelSpec) -> Result<Adapter> {
    let config = AdapterConfig::parse_bytes(config_json, Path::new(CONFIG_FILE))?;
    from_config_and_weights(config, weights, Path::new(WEIGHTS_FILE), model)
}

/// The weights of a parsed config, checked against `model`; `path` is only used in errors.
fn from_config_and_weights(
    config: AdapterConfig,
    bytes: &[u8],
    path: &Path,
    model: &ModelSpec,
) -> Result<Adapter> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| PeftError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let (found, dtype) = index_tensors(&tensors, &config, model, path)?;
    let shape = AdapterShape {
        rank: config.rank,
        alpha: config.alpha,
        targets: config.targets,
        dtype,
    };
    let rank = config.rank as usize;
    let mut layers = Vec::with_capacity(model.layers as usize);
    for layer in 0..model.layers {
        let mut pairs = Vec::new();
        for target in config.targets.iter() {
            let (input, output) = dims(model, target)?;
            let read = |matrix: Matrix, expected: [usize; 2]| {
                read_matrix(&found, (layer, target, matrix), expected, dtype, path)
            };
            let a = read(Matrix::A, [rank, input])?;
            let b = read(Matrix::B, [output, rank])?;
            pairs.push(LoraPair {
                target,
                input,
                output,
                a,
                b,
            });
        }
        layers.push(pairs);
    }
    let base_model = if config.base_model.is_empty() {
        model.name.clone()
    } else {
        config.base_model
    };
    Ok(Adapter {
        shape,
        base_model,
        layers,
    })
}

/// Maps every tensor to its `(layer, target, matrix)`, rejecting names that are not LoRA
/// weights of this model and config, and mixed or unsupported dtypes. Returns the dtype.
fn index_tensors<'a>(
    tensors: &SafeTensors<'a>,
    config: &AdapterConfig,
    model: &ModelSpec,
    path: &Path,
) -> Result<(Index<'a>, WeightDtype)> {
    let mut all = tensors.tensors();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    let unknown = |tensor: &str, reason: String| PeftError::UnknownTensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        reason,
    };
    let mut dtype = None;
    let mut found = HashMap::with_capacity(all.len());
    for (name, view) in all {
        let Some(key @ (layer, target, _)) = parse_tensor_name(&name) else {
            return Err(unknown(
                &name,
                "not a LoRA weight name PEFT writes for a Llama model".into(),
            ));
        };
        if layer >= model.layers {
            return Err(unknown(
                &name,
                format!(
                    "layer {layer}, but model {} has {} layers",
                    model.name, model.layers
                ),
            ));
        }
        if !config.targets.contains(target) {
            return Err(unknown(&name, "its module is not in target_modules".into()));
        }
        let this = WeightDtype::from_safetensors(view.dtype()).ok_or_else(|| PeftError::Dtype {
            path: path.to_path_buf(),
            tensor: name.clone(),
            found: format!("{:?}", view.dtype()),
            expected: "F32, F16 or BF16".into(),
        })?;
        match dtype {
            Some(first) if first != this => {
                return Err(PeftError::Dtype {
                    path: path.to_path_buf(),
                    tensor: name,
                    found: this.name().into(),
                    expected: format!("{first}, like the other tensors"),
                });
            }
            _ => dtype = Some(this),
        }
        found.insert(key, (name, view));
    }
    let dtype = dtype.ok_or_else(|| PeftError::MissingTensor {
        path: path.to_path_buf(),
        tensor: tensor_name(0, first_target(config), Matrix::A),
    })?;
    Ok((found, dtype))
}

fn first_target(config: &AdapterConfig) -> LoraTarget {
    config.targets.iter().next().unwrap_or(LoraTarget::Q)
}

fn read_matrix(
    found: &Index<'_>,
    key: Key,
    expected: [usize; 2],
    dtype: WeightDtype,
    path: &Path,
) -> Result<Vec<f32>> {
    let (name, view) = found.get(&key).ok_or_else(|| PeftError::MissingTensor {
        path: path.to_path_buf(),
        tensor: tensor_name(key.0, key.1, key.2),
    })?;
    if view.shape() != expected {
        return Err(PeftError::Shape {
            path: path.to_path_buf(),
            tensor: name.clone(),
            found: view.shape().to_vec(),
            expected: expected.to_vec(),
        });
    }
    let count = expected[0] * expected[1];
    if view.data().len() != count * dtype.bytes() {
        return Err(PeftError::Safetensors {
            path: path.to_path_buf(),
            message: format!(
                "tensor `{name}` holds {} bytes for {count} elements",
                view.data().len()
            ),
        });
    }
    let mut out = Vec::with_capacity(count);
    dtype.decode(view.data(), &mut out);
    Ok(out)
}
