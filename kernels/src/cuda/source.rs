//! The kernels' CUDA C sources, compiled at run time by NVRTC into one module per head width.
//!
//! Each `.cu` file in `kernels/` holds one family; [`ModuleSource::for_head_dim`] concatenates
//! them behind a `#define HEAD_DIM` so the attention kernel's per-lane arrays have a
//! compile-time size. [`KERNEL_NAMES`] lists every entry point: the device loads them all, and
//! the compile check asks `ptxas` about each.

/// Batched page gather/scatter and the NaN fill.
const COPY: &str = include_str!("kernels/copy.cu");
/// Row gather, RMSNorm, RoPE, SwiGLU, KV write.
const LAYER: &str = include_str!("kernels/layer.cu");
/// The tiled GEMM, fp32 weights and bf16 weights.
const GEMM: &str = include_str!("kernels/gemm.cu");
/// Paged attention (prefill and decode).
const ATTENTION: &str = include_str!("kernels/attention.cu");
/// LoRA shrink and expand over paged adapter weights.
const LORA: &str = include_str!("kernels/lora.cu");

/// Every `extern "C"` kernel of the module, in source order.
pub const KERNEL_NAMES: [&str; 13] = [
    "gather_pages",
    "scatter_pages",
    "fill_f32",
    "gather_rows",
    "rms_norm",
    "rope",
    "swiglu",
    "write_kv",
    "gemm",
    "gemm_bf16w",
    "paged_attention",
    "lora_shrink",
    "lora_expand",
];

/// Head widths the compile check builds: the synthetic model's (32), SmolLM2's (64) and
/// Llama's (128). [`check_supported`](super::check_supported) accepts these widths only.
pub const CHECKED_HEAD_DIMS: [usize; 3] = [32, 64, 128];

/// The full source of one kernel module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSource {
    /// A name for logs and PTX files, e.g. `fastlibra_hd32`.
    pub name: String,
    /// Head width the attention kernel is built for.
    pub head_dim: usize,
    /// CUDA C text.
    pub text: String,
}

impl ModuleSource {
    /// The module for heads of `head_dim` floats (a positive multiple of 32, which the
    /// attention kernel's `#error` directives enforce at compile time).
    pub fn for_head_dim(head_dim: usize) -> Self {
        let mut text = format!("#define HEAD_DIM {head_dim}\n");
        for (file, body) in [
            ("copy.cu", COPY),
            ("layer.cu", LAYER),
            ("gemm.cu", GEMM),
            ("attention.cu", ATTENTION),
            ("lora.cu", LORA),
        ] {
            text.push_str(&format!("\n// ---- {file}\n"));
            text.push_str(body);
        }
        ModuleSource {
            name: format!("fastlibra_hd{head_dim}"),
            head_dim,
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_widths_are_the_supported_ones() {
        assert!(CHECKED_HEAD_DIMS.contains(&64), "SmolLM2's heads");
        assert_eq!(
            CHECKED_HEAD_DIMS.iter().max(),
            Some(&super::super::support::MAX_HEAD_DIM)
        );
        for hd in CHECKED_HEAD_DIMS {
            assert!(hd.is_multiple_of(32));
            let m = ModuleSource::for_head_dim(hd);
            assert!(m.text.starts_with(&format!("#define HEAD_DIM {hd}\n")));
            assert_eq!(m.name, format!("fastlibra_hd{hd}"));
        }
    }

    #[test]
    fn every_listed_kernel_is_defined_once_and_every_definition_is_listed() {
        let text = ModuleSource::for_head_dim(32).text;
        for name in KERNEL_NAMES {
            let defined = text.matches(&format!("\n{name}(")).count();
            assert_eq!(defined, 1, "kernel {name} defined {defined} times");
        }
        let entries = text.matches("extern \"C\" __global__").count();
        assert_eq!(
            entries,
            KERNEL_NAMES.len(),
            "a kernel is missing from KERNEL_NAMES"
        );
    }
}
