//! GGUF v3 (and v2, the same layout) files: the container llama.cpp reads, memory-mapped.
//!
//! ```text
//!   GgufFile::open(path) ── mmap ──► parse(&bytes) ──► GgufContent { metadata, tensors }
//!        │ get(key), metadata()                                │
//!        │ tensors(), tensor_bytes(info) ──► &[u8] in the map ─┘
//!        ▼
//!   dequant::dequantize(type, bytes) ──► Vec<f32>
//! ```
//!
//! [`parse`] works on any `&[u8]` and never panics: it is the entry point for fuzzing. Every
//! malformed input is a [`CheckpointError`] naming the file and the field or tensor.

mod ggml_type;
mod parse;
mod reader;
mod value;
pub mod write;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

pub use ggml_type::GgmlType;
pub use parse::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT};
pub use value::GgufValue;

use super::dequant::DequantError;
use super::error::{CheckpointError, Result};

/// Where one tensor lies in a GGUF file and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the fastest-varying (a matrix's columns).
    pub dims: Vec<u64>,
    /// The element type.
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section (a multiple of the alignment).
    pub offset: u64,
    /// Bytes of data.
    pub size_bytes: u64,
}

impl GgufTensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape as PyTorch writes it (slowest dimension first): `dims` reversed.
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

/// The parsed header of a GGUF file: metadata in file order and tensor infos.
#[derive(Clone, Debug)]
pub struct GgufContent {
    version: u32,
    metadata: Vec<(String, GgufValue)>,
    index: HashMap<String, usize>,
    tensors: Vec<GgufTensorInfo>,
    alignment: u64,
    data_start: u64,
}

impl GgufContent {
    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &GgufValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The tensor info named `name`.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section from the start of the file.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }
}

/// Parses a whole GGUF file held in memory. Never panics, whatever the bytes; errors name the
/// file as `<memory>`.
pub fn parse(bytes: &[u8]) -> Result<GgufContent> {
    parse::parse_content(bytes, Path::new("<memory>"))
}

/// An open, memory-mapped GGUF file. Cloning is cheap: the map and the parsed header are
/// shared.
#[derive(Clone, Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Arc<Mmap>,
    content: Arc<GgufContent>,
}

impl GgufFile {
    /// Maps `path` and parses its header and metadata (tensor data stays in the map).
    pub fn open(path: &Path) -> Result<GgufFile> {
        let io = |e: std::io::Error| CheckpointError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; like every mmap-based loader (llama.cpp, safetensors),
        // this relies on nobody truncating or rewriting the file while it is mapped.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let content = parse::parse_content(&map, path)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map: Arc::new(map),
            content: Arc::new(content),
        })
    }

    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.content.get(key)
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &GgufValue)> {
        self.content.metadata()
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        self.content.tensors()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn content(&self) -> &GgufContent {
        &self.content
    }

    /// The memory map of the whole file.
    pub fn map(&self) -> &Arc<Mmap> {
        &self.map
    }

    /// Byte offset of a tensor's data from the start of the file.
    pub fn data_offset(&self, info: &GgufTensorInfo) -> usize {
        // Checked at parse time to lie inside the file, so it fits in usize.
        (self.content.data_start + info.offset) as usize
    }

    /// The raw bytes of a tensor of this file.
    pub fn tensor_bytes(&self, info: &GgufTensorInfo) -> Result<&[u8]> {
        let start = self.data_offset(info);
        start
            .checked_add(info.size_bytes as usize)
            .and_then(|end| self.map.get(start..end))
            .ok_or_else(|| CheckpointError::Corrupt {
                path: self.path.clone(),
                field: format!("tensor `{}`", info.name),
                reason: "not a tensor of this file".into(),
            })
    }

    /// A tensor's values as `f32` (see [`dequantize`](super::dequant::dequantize)).
    pub fn dequantize(&self, info: &GgufTensorInfo) -> Result<Vec<f32>> {
        let bytes = self.tensor_bytes(info)?;
        super::dequant::dequantize(info.ggml_type, bytes).map_err(|e| {
            let (path, field) = (self.path.clone(), format!("tensor `{}`", info.name));
            match e {
                DequantError::Unsupported(_) => CheckpointError::Unsupported {
                    path,
                    field,
                    reason: e.to_string(),
                },
                DequantError::Length { .. } => CheckpointError::Corrupt {
                    path,
                    field,
                    reason: e.to_string(),
                },
            }
        })
    }
}
