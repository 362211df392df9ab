//! Llama-family checkpoints: GGUF files (llama.cpp's format) and Hugging Face folders
//! (`config.json` + safetensors), loaded to one [`Checkpoint`] of `f32` tensors with
//! Hugging Face's names and layout.
//!
//! ```text
//!   model.gguf ──► GgufFile (mmap) ─┬─ metadata ──► LlamaConfig
//!                                   └─ tensors ──► dequantise, undo llama.cpp's Q/K row
//!                                                  permutation ──┐
//!   folder/ config.json ──────────────────────────► LlamaConfig  ├──► Checkpoint
//!           model*.safetensors (mmap) ──► f32: zero-copy;        │     tensor(name) ──► Tensor
//!                                         f16/bf16: widened ─────┘     (Arc, cheap clone)
//! ```
//!
//! Everything is checked and converted once, in [`Checkpoint::open`]: every tensor the config
//! implies must be present with its shape, every dtype supported. After that the weights are
//! read-only and shared (`Arc`); [`Checkpoint::open_shared`] also shares one load among all
//! callers of a process (the engine's shards).
//!
//! Canonical names are Hugging Face's (`model.layers.{i}.self_attn.q_proj.weight`, …; see
//! [`names`]), tensors are row-major `out × in`, and Q and K rows are in Hugging Face's order,
//! so one forward pass (rotate-half RoPE) serves both formats.

mod config;
pub mod dequant;
mod error;
pub mod gguf;
mod gguf_llama;
pub mod hf;
mod load;
pub mod locate;
pub mod names;
mod rope_order;
mod tensor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

pub use config::LlamaConfig;
pub use error::{CheckpointError, Result};
pub use gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
pub use rope_order::{permute_rope_rows, unpermute_rope_rows};
pub use tensor::{Tensor, Weights};

/// The on-disk format a checkpoint came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A GGUF file.
    Gguf,
    /// A Hugging Face folder: `config.json` and safetensors.
    HuggingFace,
}

/// A loaded checkpoint: its config and every tensor as `f32`, shared read-only.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The model's shape and constants.
    pub config: LlamaConfig,
    /// Where it came from.
    pub format: Format,
    /// The file (GGUF) or folder (Hugging Face) opened.
    pub path: PathBuf,
    /// The GGUF file, for its metadata (tokenizer, chat template); `None` for a folder.
    pub gguf: Option<GgufFile>,
    tensors: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    /// Opens a `.gguf` file or a Hugging Face folder, checks it against its config and
    /// converts every tensor to `f32`.
    pub fn open(path: &Path) -> Result<Checkpoint> {
        if path.is_dir() {
            hf::open(path)
        } else if path.is_file() {
            gguf_llama::open(path)
        } else {
            Err(not_found(path))
        }
    }

    /// The config of a `.gguf` file or a Hugging Face folder, after the checks
    /// [`Checkpoint::open`] makes (every tensor present, with its shape and a supported type),
    /// without converting any tensor: cheap, for planning.
    pub fn read_config(path: &Path) -> Result<LlamaConfig> {
        if path.is_dir() {
            hf::read_config(path)
        } else if path.is_file() {
            gguf_llama::read_config(path)
        } else {
            Err(not_found(path))
        }
    }

    /// Like [`Checkpoint::open`], but a checkpoint already open in this process (same path,
    /// still held by someone) is shared instead of loaded again.
    pub fn open_shared(path: &Path) -> Result<Arc<Checkpoint>> {
        static OPEN: Mutex<Vec<(PathBuf, Weak<Checkpoint>)>> = Mutex::new(Vec::new());
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut open = OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(held) = open
            .iter()
            .find(|(p, _)| *p == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(held);
        }
        let checkpoint = Arc::new(Checkpoint::open(path)?);
        open.push((key, Arc::downgrade(&checkpoint)));
        Ok(checkpoint)
    }

    /// The tensor with this canonical name, as `f32` (a cheap clone of the shared weights).
    /// With tied embeddings, [`names::LM_HEAD`] is the embedding.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let name = if name == names::LM_HEAD && self.config.tied_embeddings {
            names::EMBED
        } else {
            name
        };
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| CheckpointError::UnknownTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
            })
    }

    /// Every canonical name [`Checkpoint::tensor`] answers, sorted (including
    /// [`names::LM_HEAD`] when it is tied).
    pub fn tensor_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        if self.config.tied_embeddings && !self.tensors.contains_key(names::LM_HEAD) {
            names.push(names::LM_HEAD.to_string());
            names.sort();
        }
        names
    }

    /// Bytes of `f32` weights this checkpoint holds outside memory maps (dequantised or
    /// widened tensors).
    pub fn owned_bytes(&self) -> usize {
        self.tensors
            .values()
            .filter(|t| !t.data.is_mapped())
            .map(|t| t.data.len() * 4)
            .sum()
    }

    fn new(
        config: LlamaConfig,
        format: Format,
        path: &Path,
        gguf: Option<GgufFile>,
        tensors: BTreeMap<String, Tensor>,
    ) -> Checkpoint {
        Checkpoint {
            config,
            format,
            path: path.to_path_buf(),
            gguf,
            tensors,
        }
    }
}

fn not_found(path: &Path) -> CheckpointError {
    CheckpointError::NotACheckpoint {
        path: path.to_path_buf(),
        reason: "no such file or folder; give a .gguf file or a folder with config.json".into(),
    }
}
