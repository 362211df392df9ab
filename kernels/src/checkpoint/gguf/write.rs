//! Writing GGUF v3 files: small fixtures for tests and fuzz seeds, and F32/F16 exports.

use std::path::Path;

use super::{DEFAULT_ALIGNMENT, GgmlType, GgufValue};
use crate::checkpoint::error::{CheckpointError, Result};

/// One tensor to write: its name, ggml dims (`dims[0]` fastest), type and raw bytes.
#[derive(Clone, Debug)]
pub struct TensorToWrite {
    /// Tensor name.
    pub name: String,
    /// Dimensions in ggml order.
    pub dims: Vec<u64>,
    /// Element type of `data`.
    pub ggml_type: GgmlType,
    /// The encoded data (whole blocks).
    pub data: Vec<u8>,
}

impl TensorToWrite {
    /// An F32 tensor of PyTorch shape `rows × cols` (`rows = 1` for a vector, written 1-D).
    pub fn f32(name: &str, rows: usize, cols: usize, values: &[f32]) -> TensorToWrite {
        let dims = if rows == 1 {
            vec![cols as u64]
        } else {
            vec![cols as u64, rows as u64]
        };
        TensorToWrite {
            name: name.to_string(),
            dims,
            ggml_type: GgmlType::F32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &GgufValue) {
    match value {
        GgufValue::U8(v) => out.push(*v),
        GgufValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::Bool(v) => out.push(u8::from(*v)),
        GgufValue::String(s) => put_string(out, s),
        GgufValue::Array(items) => {
            // An empty array's element type is irrelevant; write u8.
            let ty = items.first().map_or(0, GgufValue::type_id);
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|item| put_value(out, item));
        }
    }
}

/// The bytes of a GGUF v3 file with this metadata (in order) and these tensors, laid out as
/// `gguf-py`'s writer does: each tensor at the next multiple of the alignment
/// (`general.alignment` if the metadata sets it as a `u32`, else 32). Array elements must all
/// have the first element's type (as GGUF requires).
pub fn to_bytes(metadata: &[(String, GgufValue)], tensors: &[TensorToWrite]) -> Vec<u8> {
    let alignment = metadata
        .iter()
        .find(|(k, _)| k == super::ALIGNMENT_KEY)
        .and_then(|(_, v)| match v {
            GgufValue::U32(a) if a.is_power_of_two() => Some(u64::from(*a)),
            _ => None,
        })
        .unwrap_or(DEFAULT_ALIGNMENT) as usize;
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_string(&mut out, key);
        out.extend_from_slice(&value.type_id().to_le_bytes());
        put_value(&mut out, value);
    }
    let mut offset = 0usize;
    for t in tensors {
        put_string(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        t.dims
            .iter()
            .for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = (offset + t.data.len()).next_multiple_of(alignment);
    }
    for t in tensors {
        out.resize(out.len().next_multiple_of(alignment), 0);
        out.extend_from_slice(&t.data);
    }
    out
}

/// Writes [`to_bytes`] to `path`.
pub fn write_file(
    path: &Path,
    metadata: &[(String, GgufValue)],
    tensors: &[TensorToWrite],
) -> Result<()> {
    std::fs::write(path, to_bytes(metadata, tensors)).map_err(|e| CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
