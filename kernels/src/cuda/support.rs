//! Which model shapes the CUDA kernels run: everything the CPU backend accepts except what a
//! kernel is built around. Checked on the host, before a weight is uploaded or a kernel
//! compiled, so an unsupported checkpoint is a [`CudaError::Unsupported`] naming the field
//! rather than an NVRTC `#error` or a wrong answer.
//!
//! What the kernels take from the shape, and why each is general:
//! - head width: a compile-time constant of the attention kernel (one module per width), which
//!   keeps `head_dim / 32` values per lane, so it must be a multiple of 32 (32, 64 for
//!   SmolLM2, 128 for Llama), and at most [`MAX_HEAD_DIM`], the widest the compile check
//!   assembles;
//! - grouped-query attention: query head `h` reads KV head `h / (heads / kv_heads)`, as
//!   [`CpuModelConfig::kv_head_of`];
//! - RoPE base, RMSNorm epsilon, widths, vocabulary: kernel arguments read from the config;
//! - a tied LM head: the embedding uploaded a second time in the GEMM's `input × output`
//!   layout (and rounded like the other GEMM weights with bf16 weights);
//! - every size fits the kernels' 32-bit indices (checked here) and 64-bit offsets.

use super::error::{CudaError, Result};
use crate::cpu::CpuModelConfig;

/// The widest head the attention kernel is built for: the widest of
/// [`CHECKED_HEAD_DIMS`](super::source::CHECKED_HEAD_DIMS), which the compile check assembles
/// without spills.
pub const MAX_HEAD_DIM: usize = 128;

/// Checks that the CUDA kernels can run a model of shape `config` (after the CPU backend's own
/// [`CpuModelConfig::validate`]); the error names the field and its value.
pub fn check_supported(config: &CpuModelConfig) -> Result<()> {
    config.validate()?;
    let unsupported = |what: String| Err(CudaError::Unsupported { what });
    let hd = config.head_dim;
    if !hd.is_multiple_of(32) || hd > MAX_HEAD_DIM {
        return unsupported(format!(
            "head_dim {hd}: the attention kernel needs a multiple of 32 up to {MAX_HEAD_DIM}"
        ));
    }
    let widths = [
        ("hidden", config.hidden),
        ("ffn", config.ffn),
        ("vocab", config.vocab),
        ("heads × head_dim", config.q_dim()),
        ("kv_heads", config.kv_heads),
    ];
    for (name, width) in widths {
        if u32::try_from(width).is_err() {
            return unsupported(format!("{name} {width} does not fit a 32-bit index"));
        }
    }
    // Grid dimension y of the attention launch is the head count (at most 65,535).
    if config.heads > 65_535 {
        return unsupported(format!("heads {}: at most 65,535", config.heads));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_models_and_smollm2_are_supported() {
        for c in [
            CpuModelConfig::default(),
            CpuModelConfig::smollm2_135m(),
            CpuModelConfig {
                head_dim: 128,
                ..CpuModelConfig::default()
            },
            CpuModelConfig {
                heads: 32,
                kv_heads: 8,
                head_dim: 128,
                hidden: 4096,
                ..CpuModelConfig::default()
            },
        ] {
            assert_eq!(check_supported(&c), Ok(()), "{c:?}");
        }
    }

    #[test]
    fn a_head_width_the_attention_kernel_lacks_is_named() {
        for hd in [16, 48, 80, 256] {
            let c = CpuModelConfig {
                head_dim: hd,
                ..CpuModelConfig::default()
            };
            let err = check_supported(&c).expect_err("unsupported").to_string();
            assert!(err.contains(&format!("head_dim {hd}")), "{err}");
            assert!(err.contains("multiple of 32"), "{err}");
        }
        // The tiny test model (heads of 16) runs on the CPU only.
        assert!(check_supported(&CpuModelConfig::tiny()).is_err());
    }

    #[test]
    fn an_invalid_shape_is_the_cpu_backends_error() {
        let c = CpuModelConfig {
            kv_heads: 3,
            ..CpuModelConfig::default()
        };
        let err = check_supported(&c).expect_err("invalid").to_string();
        assert!(err.contains("kv_heads"), "{err}");
    }
}
