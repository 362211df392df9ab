//! The element types an adapter may be stored in, and their conversion to and from `f32`.

use half::{bf16, f16};

/// How an adapter's weights are stored on disk and in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightDtype {
    /// IEEE single precision, 4 bytes.
    F32,
    /// IEEE half precision, 2 bytes.
    F16,
    /// bfloat16, 2 bytes (the dtype of the Llama presets).
    BF16,
}

impl WeightDtype {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            WeightDtype::F32 => 4,
            WeightDtype::F16 | WeightDtype::BF16 => 2,
        }
    }

    /// The CLI name: `f32`, `f16`, `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::F16 => "f16",
            WeightDtype::BF16 => "bf16",
        }
    }

    /// Parses a CLI name (case-insensitive).
    pub fn from_name(name: &str) -> Option<WeightDtype> {
        match name.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(WeightDtype::F32),
            "f16" | "float16" => Some(WeightDtype::F16),
            "bf16" | "bfloat16" => Some(WeightDtype::BF16),
            _ => None,
        }
    }

    pub(crate) fn to_safetensors(self) -> safetensors::Dtype {
        match self {
            WeightDtype::F32 => safetensors::Dtype::F32,
            WeightDtype::F16 => safetensors::Dtype::F16,
            WeightDtype::BF16 => safetensors::Dtype::BF16,
        }
    }

    pub(crate) fn from_safetensors(dtype: safetensors::Dtype) -> Option<WeightDtype> {
        match dtype {
            safetensors::Dtype::F32 => Some(WeightDtype::F32),
            safetensors::Dtype::F16 => Some(WeightDtype::F16),
            safetensors::Dtype::BF16 => Some(WeightDtype::BF16),
            _ => None,
        }
    }

    /// `value` rounded to this dtype (to nearest even) and widened back: what storing it keeps.
    pub fn round(self, value: f32) -> f32 {
        match self {
            WeightDtype::F32 => value,
            WeightDtype::F16 => f16::from_f32(value).to_f32(),
            WeightDtype::BF16 => bf16::from_f32(value).to_f32(),
        }
    }

    /// Appends `value` in this dtype, little-endian.
    pub fn encode(self, value: f32, out: &mut Vec<u8>) {
        match self {
            WeightDtype::F32 => out.extend_from_slice(&value.to_le_bytes()),
            WeightDtype::F16 => out.extend_from_slice(&f16::from_f32(value).to_le_bytes()),
            WeightDtype::BF16 => out.extend_from_slice(&bf16::from_f32(value).to_le_bytes()),
        }
    }

    /// Decodes little-endian elements of this dtype; `bytes.len()` must be a multiple of
    /// [`WeightDtype::bytes`] (a trailing partial element is ignored).
    pub fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            WeightDtype::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            WeightDtype::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            WeightDtype::BF16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
        }
    }
}

impl std::fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
