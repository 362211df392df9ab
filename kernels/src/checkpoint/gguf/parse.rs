//! Parsing a GGUF file's header, metadata and tensor infos from bytes.
//!
//! ```text
//!  "GGUF" u32 | version u32 | tensor_count u64 | kv_count u64
//!  kv_count × ( key: string | type u32 | value )        value: scalar | string | array
//!  tensor_count × ( name: string | n_dims u32 | ne u64 × n_dims | type u32 | offset u64 )
//!  padding to general.alignment (default 32)
//!  data section: tensor i at data_start + offset_i, each offset a multiple of the alignment
//! ```
//!
//! Everything is checked: counts against the bytes left (no allocation a file can inflate),
//! nesting depth, UTF-8, duplicate keys and names, dimensions and their product, each tensor's
//! type, alignment and extent inside the data section.

use std::collections::HashMap;
use std::path::Path;

use super::reader::Reader;
use super::{GgmlType, GgufContent, GgufTensorInfo, GgufValue};
use crate::checkpoint::error::{CheckpointError, Result};

/// `"GGUF"` read as a little-endian `u32`.
const MAGIC: u32 = u32::from_le_bytes(*b"GGUF");
/// The key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// The alignment when the file does not set one.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Deepest nesting of arrays accepted (files in the wild use 1).
const MAX_ARRAY_DEPTH: u32 = 8;

/// Parses the bytes of a whole GGUF file; `path` only names the file in errors.
pub(super) fn parse_content(bytes: &[u8], path: &Path) -> Result<GgufContent> {
    let mut r = Reader::new(bytes, path);
    let magic = r.u32(&|| "magic".into())?;
    if magic != MAGIC {
        let reason = format!("magic is {:02x?}, not \"GGUF\"", magic.to_le_bytes());
        return Err(r.corrupt("magic".into(), reason));
    }
    let version = r.u32(&|| "version".into())?;
    if version != 2 && version != 3 {
        let reason = if version.swap_bytes() == 3 || version.swap_bytes() == 2 {
            "big-endian GGUF files are not supported".to_string()
        } else {
            format!("GGUF version {version}; versions 2 and 3 are supported")
        };
        return Err(CheckpointError::Unsupported {
            path: path.to_path_buf(),
            field: "version".into(),
            reason,
        });
    }
    let tensor_count = r.u64(&|| "tensor_count".into())?;
    let kv_count = r.u64(&|| "kv_count".into())?;
    let (metadata, index) = read_metadata(&mut r, kv_count)?;
    let alignment = alignment(&r, &metadata, &index)?;
    let tensors = read_tensor_infos(&mut r, tensor_count)?;
    let data_start = (r.pos() as u64).next_multiple_of(alignment);
    for t in &tensors {
        check_extent(&r, t, alignment, data_start, bytes.len() as u64)?;
    }
    Ok(GgufContent {
        version,
        metadata,
        index,
        tensors,
        alignment,
        data_start,
    })
}

type Metadata = (Vec<(String, GgufValue)>, HashMap<String, usize>);

fn read_metadata(r: &mut Reader<'_>, kv_count: u64) -> Result<Metadata> {
    // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes.
    let cap = bounded_capacity(kv_count, r.remaining(), 13);
    let mut metadata = Vec::with_capacity(cap);
    let mut index = HashMap::with_capacity(cap);
    for i in 0..kv_count {
        let key = r.string(&|| format!("metadata key #{i}"))?.to_string();
        let field = |what: &str| format!("metadata key #{i} (`{key}`) {what}");
        let ty = r.u32(&|| field("type"))?;
        let value = read_value(r, ty, 0, &|| field("value"))?;
        if index.insert(key.clone(), metadata.len()).is_some() {
            return Err(r.corrupt(field("name"), "duplicate key".into()));
        }
        metadata.push((key, value));
    }
    Ok((metadata, index))
}

fn read_value(
    r: &mut Reader<'_>,
    ty: u32,
    depth: u32,
    field: &dyn Fn() -> String,
) -> Result<GgufValue> {
    Ok(match ty {
        0 => GgufValue::U8(r.u8(field)?),
        1 => GgufValue::I8(r.u8(field)? as i8),
        2 => GgufValue::U16(r.u16(field)?),
        3 => GgufValue::I16(r.u16(field)? as i16),
        4 => GgufValue::U32(r.u32(field)?),
        5 => GgufValue::I32(r.u32(field)? as i32),
        6 => GgufValue::F32(r.f32(field)?),
        7 => match r.u8(field)? {
            0 => GgufValue::Bool(false),
            1 => GgufValue::Bool(true),
            b => return Err(r.corrupt(field(), format!("bool byte is {b}, not 0 or 1"))),
        },
        8 => GgufValue::String(r.string(field)?.to_string()),
        9 => read_array(r, depth, field)?,
        10 => GgufValue::U64(r.u64(field)?),
        11 => GgufValue::I64(r.u64(field)? as i64),
        12 => GgufValue::F64(r.f64(field)?),
        _ => return Err(r.corrupt(field(), format!("unknown value type {ty}"))),
    })
}

fn read_array(r: &mut Reader<'_>, depth: u32, field: &dyn Fn() -> String) -> Result<GgufValue> {
    if depth >= MAX_ARRAY_DEPTH {
        let reason = format!("arrays nested deeper than {MAX_ARRAY_DEPTH}");
        return Err(r.corrupt(field(), reason));
    }
    let ty = r.u32(&|| format!("{} element type", field()))?;
    let len = r.u64(&|| format!("{} length", field()))?;
    let min_size = match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8..=12 => 8,
        _ => return Err(r.corrupt(field(), format!("unknown array element type {ty}"))),
    };
    let mut items = Vec::with_capacity(bounded_capacity(len, r.remaining(), min_size));
    for j in 0..len {
        let item = read_value(r, ty, depth + 1, &|| format!("{} element {j}", field()))?;
        items.push(item);
    }
    Ok(GgufValue::Array(items))
}

/// `count` capped by what the remaining bytes could hold, so a corrupt count cannot make the
/// parser reserve more memory than the file's size.
fn bounded_capacity(count: u64, remaining: usize, min_size: usize) -> usize {
    usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(remaining / min_size)
}

fn alignment(
    r: &Reader<'_>,
    metadata: &[(String, GgufValue)],
    index: &HashMap<String, usize>,
) -> Result<u64> {
    let Some(&i) = index.get(ALIGNMENT_KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let invalid = |reason: String| CheckpointError::InvalidField {
        path: r.path().to_path_buf(),
        field: ALIGNMENT_KEY.into(),
        reason,
    };
    match metadata[i].1 {
        GgufValue::U32(a) if a.is_power_of_two() => Ok(u64::from(a)),
        GgufValue::U32(a) => Err(invalid(format!("{a} is not a power of two"))),
        ref v => Err(invalid(format!("type {}, expected u32", v.type_name()))),
    }
}

fn read_tensor_infos(r: &mut Reader<'_>, count: u64) -> Result<Vec<GgufTensorInfo>> {
    // A tensor info takes at least 8 (name length) + 4 + 4 + 8 bytes.
    let mut tensors = Vec::with_capacity(bounded_capacity(count, r.remaining(), 24));
    let mut names = HashMap::new();
    for i in 0..count {
        let name = r.string(&|| format!("tensor info #{i} name"))?.to_string();
        let field = |what: &str| format!("tensor #{i} (`{name}`) {what}");
        let n_dims = r.u32(&|| field("n_dims"))?;
        if n_dims > MAX_DIMS {
            return Err(r.corrupt(field("n_dims"), format!("{n_dims} > {MAX_DIMS}")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(r.u64(&|| field(&format!("ne[{d}]")))?);
        }
        let type_id = r.u32(&|| field("type"))?;
        let offset = r.u64(&|| field("offset"))?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| CheckpointError::Unsupported {
            path: r.path().to_path_buf(),
            field: field("type"),
            reason: format!("unknown ggml type id {type_id}"),
        })?;
        let size_bytes =
            tensor_bytes(&dims, ggml_type).map_err(|reason| r.corrupt(field("shape"), reason))?;
        if names.insert(name.clone(), i).is_some() {
            return Err(r.corrupt(field("name"), "duplicate tensor name".into()));
        }
        tensors.push(GgufTensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            size_bytes,
        });
    }
    Ok(tensors)
}

/// Bytes of a tensor of shape `dims` (ggml order, `ne[0]` fastest) and type `t`.
fn tensor_bytes(dims: &[u64], t: GgmlType) -> std::result::Result<u64, String> {
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| format!("element count of {dims:?} overflows"))?;
    let block = t.block_elements();
    let ne0 = dims.first().copied().unwrap_or(1);
    if !ne0.is_multiple_of(block) {
        return Err(format!(
            "ne[0] = {ne0} is not a multiple of the {t} block size {block}"
        ));
    }
    (elements / block)
        .checked_mul(t.block_bytes())
        .ok_or_else(|| format!("byte size of {dims:?} {t} overflows"))
}

/// Checks that tensor `t` starts aligned and lies inside the file (`file_len` bytes), whose
/// data section starts at `data_start`.
fn check_extent(
    r: &Reader<'_>,
    t: &GgufTensorInfo,
    alignment: u64,
    data_start: u64,
    file_len: u64,
) -> Result<()> {
    let field = || format!("tensor `{}` offset", t.name);
    if !t.offset.is_multiple_of(alignment) {
        let reason = format!(
            "{} is not a multiple of the alignment {alignment}",
            t.offset
        );
        return Err(r.corrupt(field(), reason));
    }
    let start = data_start.saturating_add(t.offset);
    match start.checked_add(t.size_bytes) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(CheckpointError::Truncated {
            path: r.path().to_path_buf(),
            field: format!("tensor `{}` data ({})", t.name, t.ggml_type),
            offset: start,
            needed: t.size_bytes,
            len: file_len,
        }),
    }
}
