//! Dequantisation of ggml tensor data to `f32`: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K
//! and Q6_K.
//!
//! Each block layout and formula is ggml's (`ggml-quants.c`, `dequantize_row_*`), evaluated in
//! the same order in `f32` (Rust never fuses a multiply and an add), so the results equal the
//! `gguf` Python package's `gguf.quants.dequantize` bit for bit; `kernels/tests/
//! checkpoint_dequant.rs` checks that on real tensors.

mod kquant;
mod legacy;

use half::{bf16, f16};

use super::gguf::GgmlType;

/// Why bytes could not be dequantised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DequantError {
    /// The type has no dequantiser here.
    #[error(
        "tensor type {0} is not supported; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K"
    )]
    Unsupported(GgmlType),
    /// The byte length is not a whole number of blocks, or disagrees with the output length.
    #[error("{bytes} bytes of {ty} do not hold {elements} elements")]
    Length {
        /// The type.
        ty: GgmlType,
        /// Bytes given.
        bytes: usize,
        /// Elements asked for.
        elements: usize,
    },
}

/// Dequantises `bytes` of type `ty` (whole blocks) to a new vector.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, DequantError> {
    if !ty.is_supported() {
        return Err(DequantError::Unsupported(ty));
    }
    let block_bytes = ty.block_bytes() as usize;
    let elements = (bytes.len() / block_bytes) * ty.block_elements() as usize;
    let mut out = vec![0.0; elements];
    dequantize_into(ty, bytes, &mut out)?;
    Ok(out)
}

/// Dequantises `bytes` of type `ty` into `out`, which must hold exactly the elements the
/// bytes encode.
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let (block, block_bytes) = (ty.block_elements() as usize, ty.block_bytes() as usize);
    let length = DequantError::Length {
        ty,
        bytes: bytes.len(),
        elements: out.len(),
    };
    if block_bytes == 0
        || !bytes.len().is_multiple_of(block_bytes)
        || bytes.len() / block_bytes * block != out.len()
    {
        return Err(length);
    }
    let blocks = bytes
        .chunks_exact(block_bytes)
        .zip(out.chunks_exact_mut(block));
    match ty {
        GgmlType::F32 => {
            blocks.for_each(|(b, o)| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        GgmlType::F16 => blocks.for_each(|(b, o)| o[0] = f16::from_le_bytes([b[0], b[1]]).to_f32()),
        GgmlType::BF16 => {
            blocks.for_each(|(b, o)| o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32())
        }
        GgmlType::Q8_0 => blocks.for_each(|(b, o)| legacy::q8_0(b, o)),
        GgmlType::Q4_0 => blocks.for_each(|(b, o)| legacy::q4_0(b, o)),
        GgmlType::Q4_1 => blocks.for_each(|(b, o)| legacy::q4_1(b, o)),
        GgmlType::Q4_K => blocks.for_each(|(b, o)| kquant::q4_k(b, o)),
        GgmlType::Q5_K => blocks.for_each(|(b, o)| kquant::q5_k(b, o)),
        GgmlType::Q6_K => blocks.for_each(|(b, o)| kquant::q6_k(b, o)),
        _ => return Err(DequantError::Unsupported(ty)),
    }
    Ok(())
}

/// The little-endian f16 at `bytes[at..at + 2]`, widened.
fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_types_widen_exactly() {
        let values = [0.0f32, -1.5, 65504.0, 1.0e-7, f32::INFINITY];
        let mut f32_bytes = Vec::new();
        let mut f16_bytes = Vec::new();
        let mut bf16_bytes = Vec::new();
        for v in values {
            f32_bytes.extend_from_slice(&v.to_le_bytes());
            f16_bytes.extend_from_slice(&f16::from_f32(v).to_le_bytes());
            bf16_bytes.extend_from_slice(&bf16::from_f32(v).to_le_bytes());
        }
        assert_eq!(dequantize(GgmlType::F32, &f32_bytes), Ok(values.to_vec()));
        let f16_out = dequantize(GgmlType::F16, &f16_bytes).expect("f16");
        let bf16_out = dequantize(GgmlType::BF16, &bf16_bytes).expect("bf16");
        for (i, v) in values.into_iter().enumerate() {
            assert_eq!(f16_out[i], f16::from_f32(v).to_f32());
            assert_eq!(bf16_out[i], bf16::from_f32(v).to_f32());
        }
    }

    #[test]
    fn lengths_and_types_are_checked() {
        let three = [0u8; 3];
        assert!(matches!(
            dequantize(GgmlType::F32, &three),
            Err(DequantError::Length { .. })
        ));
        let mut out = [0.0; 31];
        let block = [0u8; 34];
        assert!(dequantize_into(GgmlType::Q8_0, &block, &mut out).is_err());
        let q5_0 = GgmlType::from_id(6).expect("Q5_0");
        assert_eq!(
            dequantize(q5_0, &[0; 22]),
            Err(DequantError::Unsupported(q5_0))
        );
        assert_eq!(dequantize(GgmlType::Q6_K, &[]), Ok(Vec::new()));
    }
}
