//! A GGUF file of architecture `llama` as a [`Checkpoint`]: config from the `llama.*`
//! metadata, tensors renamed to Hugging Face's, dequantised, and Q/K rows put back in
//! Hugging Face's order.
//! (see [`super::rope_order`]).

use std::collections::BTreeMap;
use std::path::Path;

use super::config::FieldNames;
use super::error::{CheckpointError, Result};
use super::gguf::{GgmlType, GgufFile, GgufTensorInfo};
use super::names::{self, Expected};
use super::rope_order::unpermute_rope_rows;
use super::{Checkpoint, Format, LlamaConfig, Tensor, Weights, load};

const NAMES: FieldNames = FieldNames {
    layers: "llama.block_count",
    hidden: "llama.embedding_length",
    heads: "llama.attention.head_count",
    kv_heads: "llama.attention.head_count_kv",
    head_dim: "llama.attention.key_length",
    ffn: "llama.feed_forward_length",
    vocab: "llama.vocab_size",
    rope_theta: "llama.rope.freq_base",
    rms_eps: "llama.attention.layer_norm_rms_epsilon",
    context_len: "llama.context_length",
};

/// The config and the tensor infos of a GGUF `llama` file, every tensor checked for presence,
/// shape and type (nothing converted).
fn checked(file: &GgufFile) -> Result<(LlamaConfig, Vec<(Expected, &GgufTensorInfo)>)> {
    let config = config(file)?;
    refuse_unsupported_tensors(file)?;
    let tensors = names::expected_tensors(&config)
        .into_iter()
        .map(|e| find_tensor(file, &e).map(|info| (e, info)))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, tensors))
}

/// The config of a GGUF `llama` file, after checking its tensors as [`open`] does.
pub(super) fn read_config(path: &Path) -> Result<LlamaConfig> {
    checked(&GgufFile::open(path)?).map(|(config, _)| config)
}

/// Opens a GGUF `llama` file as a checkpoint.
pub(super) fn open(path: &Path) -> Result<Checkpoint> {
    let file = GgufFile::open(path)?;
    let (config, jobs) = checked(&file)?;
    let tensors = load::parallel_map(&jobs, |(e, info)| load_tensor(&file, e, info))?;
    let names = jobs.iter().map(|(e, _)| e.name.clone());
    let tensors: BTreeMap<String, Tensor> = names.zip(tensors).collect();
    drop(jobs);
    Ok(Checkpoint::new(
        config,
        Format::Gguf,
        path,
        Some(file),
        tensors,
    ))
}

fn unsupported(file: &GgufFile, field: &str, reason: String) -> CheckpointError {
    CheckpointError::Unsupported {
        path: file.path().to_path_buf(),
        field: field.to_string(),
        reason,
    }
}

fn usize_key(file: &GgufFile, key: &str) -> Result<Option<usize>> {
    let Some(value) = file.get(key) else {
        return Ok(None);
    };
    let n = value.as_u64().and_then(|n| usize::try_from(n).ok());
    n.map(Some).ok_or_else(|| CheckpointError::InvalidField {
        path: file.path().to_path_buf(),
        field: key.to_string(),
        reason: format!(
            "a {} value, expected a non-negative integer",
            value.type_name()
        ),
    })
}

fn f32_key(file: &GgufFile, key: &str) -> Result<Option<f32>> {
    let Some(value) = file.get(key) else {
        return Ok(None);
    };
    value
        .as_f64()
        .map(|v| Some(v as f32))
        .ok_or_else(|| CheckpointError::InvalidField {
            path: file.path().to_path_buf(),
            field: key.to_string(),
            reason: format!("a {} value, expected a number", value.type_name()),
        })
}

fn required<T>(file: &GgufFile, key: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| CheckpointError::MissingField {
        path: file.path().to_path_buf(),
        field: key.to_string(),
    })
}

/// The model's config from `general.*` and `llama.*` metadata.
fn config(file: &GgufFile) -> Result<LlamaConfig> {
    let arch_key = "general.architecture";
    let arch = required(file, arch_key, file.get(arch_key))?;
    match arch.as_str() {
        Some("llama") => {}
        Some(other) => {
            return Err(unsupported(
                file,
                arch_key,
                format!("`{other}`; only `llama` is"),
            ));
        }
        None => {
            return Err(unsupported(
                file,
                arch_key,
                format!("a {} value", arch.type_name()),
            ));
        }
    }
    refuse_unsupported_metadata(file)?;
    let need = |key: &str| usize_key(file, key).and_then(|v| required(file, key, v));
    let hidden = need(NAMES.hidden)?;
    let heads = need(NAMES.heads)?;
    let head_dim =
        usize_key(file, NAMES.head_dim)?.unwrap_or(hidden.checked_div(heads).unwrap_or(0));
    let vocab = match usize_key(file, NAMES.vocab)? {
        Some(v) => v,
        None => embedding_rows(file)?,
    };
    let config = LlamaConfig {
        layers: need(NAMES.layers)?,
        hidden,
        heads,
        kv_heads: usize_key(file, NAMES.kv_heads)?.unwrap_or(heads),
        head_dim,
        ffn: need(NAMES.ffn)?,
        vocab,
        rope_theta: f32_key(file, NAMES.rope_theta)?.unwrap_or(10_000.0),
        rms_eps: required(file, NAMES.rms_eps, f32_key(file, NAMES.rms_eps)?)?,
        context_len: need(NAMES.context_len)?,
        tied_embeddings: !file.tensors().iter().any(|t| t.name == "output.weight"),
        name: match file.get("general.name").and_then(|v| v.as_str()) {
            Some(name) => name.to_string(),
            None => file_stem(file.path()),
        },
    };
    config.validate(file.path(), &NAMES)?;
    for key in ["llama.attention.value_length", "llama.rope.dimension_count"] {
        if let Some(n) = usize_key(file, key)?.filter(|&n| n != config.head_dim) {
            let reason = format!("{n} differs from the head width {}", config.head_dim);
            return Err(unsupported(file, key, reason));
        }
    }
    Ok(config)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
}

fn embedding_rows(file: &GgufFile) -> Result<usize> {
    let info = file
        .tensors()
        .iter()
        .find(|t| t.name == "token_embd.weight");
    let rows = info
        .and_then(|t| t.dims.get(1))
        .and_then(|&n| usize::try_from(n).ok());
    required(file, NAMES.vocab, rows)
}

/// Metadata that changes the computation in ways this crate does not implement.
fn refuse_unsupported_metadata(file: &GgufFile) -> Result<()> {
    let key = "llama.rope.scaling.type";
    if let Some(kind) = file
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|&k| k != "none")
    {
        return Err(unsupported(
            file,
            key,
            format!("RoPE scaling `{kind}`; only none is"),
        ));
    }
    for key in ["llama.expert_count", "llama.attention.sliding_window"] {
        if usize_key(file, key)?.is_some_and(|n| n > 0) {
            return Err(unsupported(
                file,
                key,
                "only dense full-attention Llama models are".into(),
            ));
        }
    }
    Ok(())
}

/// Tensors whose presence means a computation this crate would silently skip.
fn refuse_unsupported_tensors(file: &GgufFile) -> Result<()> {
    for t in file.tensors() {
        if t.name == "rope_freqs.weight" {
            let reason = "per-dimension RoPE frequency factors (Llama 3.1 scaling)".into();
            return Err(unsupported(file, &format!("tensor `{}`", t.name), reason));
        }
        if t.name.ends_with(".bias") {
            return Err(unsupported(
                file,
                &format!("tensor `{}`", t.name),
                "biases".into(),
            ));
        }
    }
    Ok(())
}

/// The tensor info for `e`, checked for shape and type before anything is converted.
fn find_tensor<'f>(file: &'f GgufFile, e: &Expected) -> Result<&'f GgufTensorInfo> {
    let info = file.tensors().iter().find(|t| t.name == e.gguf_name);
    let info = info.ok_or_else(|| CheckpointError::MissingTensor {
        path: file.path().to_path_buf(),
        tensor: e.gguf_name.clone(),
    })?;
    let (cols, rest) = info
        .dims
        .split_first()
        .map_or((1, &[][..]), |(c, r)| (*c, r));
    let rows: u64 = rest.iter().product();
    let matrix = rest.iter().skip(1).all(|&d| d == 1);
    if !matrix || (rows, cols) != (e.rows as u64, e.cols as u64) {
        let expected = if e.rows == 1 {
            format!("[{}]", e.cols)
        } else {
            format!("[{}, {}]", e.cols, e.rows)
        };
        return Err(CheckpointError::ShapeMismatch {
            path: file.path().to_path_buf(),
            tensor: e.gguf_name.clone(),
            found: format!("{:?} (ggml order)", info.dims),
            expected,
        });
    }
    if !info.ggml_type.is_supported() {
        let reason = format!(
            "type {}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K",
            info.ggml_type
        );
        return Err(unsupported(
            file,
            &format!("tensor `{}`", info.name),
            reason,
        ));
    }
    Ok(info)
}

fn load_tensor(file: &GgufFile, e: &Expected, info: &GgufTensorInfo) -> Result<Tensor> {
    let len = e.rows * e.cols;
    let mapped = (info.ggml_type == GgmlType::F32 && e.rope_heads.is_none())
        .then(|| Weights::mapped(file.map(), file.data_offset(info), len))
        .flatten();
    let data = match mapped {
        Some(weights) => weights,
        None => {
            let values = file.dequantize(info)?;
            match e.rope_heads {
                Some(heads) => unpermute_rope_rows(&values, heads, e.cols).into(),
                None => values.into(),
            }
        }
    };
    Ok(Tensor {
        rows: e.rows,
        cols: e.cols,
        data,
    })
}
