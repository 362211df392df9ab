//! The shape of a base model: what the cost model and the memory planner need to know about it.
//!
//! Every preset constant comes from the model's `config.json` on its Hugging Face model card
//! (`num_hidden_layers`, `hidden_size`, `num_attention_heads`, `num_key_value_heads`,
//! `intermediate_size`, `vocab_size`, `torch_dtype`). The parameter count is computed from that
//! shape by [`ModelSpec::params_from_shape`] and matches the count each card states.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// One linear projection of a decoder layer that a LoRA adapter can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LoraTarget {
    /// Query projection, `hidden → heads × head_dim` (column-parallel under tensor parallelism).
    Q,
    /// Key projection, `hidden → kv_heads × head_dim` (column-parallel).
    K,
    /// Value projection, `hidden → kv_heads × head_dim` (column-parallel).
    V,
    /// Output projection, `heads × head_dim → hidden` (row-parallel).
    O,
    /// FFN gate projection, `hidden → intermediate` (column-parallel).
    Gate,
    /// FFN up projection, `hidden → intermediate` (column-parallel).
    Up,
    /// FFN down projection, `intermediate → hidden` (row-parallel).
    Down,
}

impl LoraTarget {
    /// All targets, in the order of a decoder layer.
    pub const ALL: [LoraTarget; 7] = [
        LoraTarget::Q,
        LoraTarget::K,
        LoraTarget::V,
        LoraTarget::O,
        LoraTarget::Gate,
        LoraTarget::Up,
        LoraTarget::Down,
    ];

    /// The name used in configuration files and by PEFT's `target_modules` (`q`, `k`, `v`, `o`,
    /// `gate`, `up`, `down`).
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
            LoraTarget::Gate => "gate",
            LoraTarget::Up => "up",
            LoraTarget::Down => "down",
        }
    }

    /// Parses a target name; accepts the short names and PEFT's module names (`q_proj`, …).
    pub fn from_name(name: &str) -> Option<LoraTarget> {
        let short = name.strip_suffix("_proj").unwrap_or(name);
        LoraTarget::ALL.into_iter().find(|t| t.name() == short)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether the projection's output dimension is split across tensor-parallel ranks
    /// (column-parallel) rather than its input dimension (row-parallel), as in Megatron-LM.
    fn is_column_parallel(self) -> bool {
        !matches!(self, LoraTarget::O | LoraTarget::Down)
    }
}

/// A set of [`LoraTarget`]s: the projections an adapter carries weights for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoraTargets(u8);

impl LoraTargets {
    /// The attention projections q, k, v, o: the default target set (S-LoRA and Punica evaluate
    /// adapters on these, and it is what the memory plan assumes unless configured otherwise).
    pub const ATTENTION: LoraTargets = LoraTargets(0b000_1111);
    /// Every linear layer of a decoder layer: q, k, v, o, gate, up, down (PEFT's
    /// `target_modules="all-linear"`, QLoRA's setting).
    pub const ALL_LINEAR: LoraTargets = LoraTargets(0b111_1111);
    /// The empty set.
    pub const NONE: LoraTargets = LoraTargets(0);

    /// Whether `target` is in the set.
    pub fn contains(self, target: LoraTarget) -> bool {
        self.0 & target.bit() != 0
    }

    /// The set with `target` added.
    pub fn with(self, target: LoraTarget) -> LoraTargets {
        LoraTargets(self.0 | target.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The targets in the set, in layer order.
    pub fn iter(self) -> impl Iterator<Item = LoraTarget> {
        LoraTarget::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }

    /// Builds a set from target names (see [`LoraTarget::from_name`]); returns the first name
    /// that is not a target.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<LoraTargets, String> {
        names.iter().try_fold(LoraTargets::NONE, |set, name| {
            LoraTarget::from_name(name.as_ref())
                .map(|t| set.with(t))
                .ok_or_else(|| name.as_ref().to_string())
        })
    }
}

impl Default for LoraTargets {
    fn default() -> Self {
        LoraTargets::ATTENTION
    }
}

/// The shape of a decoder-only transformer (Llama family) and how it is split across GPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Preset or user-given name, for reports.
    pub name: String,
    /// Decoder layers (`num_hidden_layers`).
    pub layers: u32,
    /// Model width (`hidden_size`).
    pub hidden_size: u32,
    /// Query heads (`num_attention_heads`).
    pub attention_heads: u32,
    /// Key/value heads (`num_key_value_heads`; smaller than `attention_heads` under GQA).
    pub kv_heads: u32,
    /// Width of one head (`hidden_size / num_attention_heads` for these models).
    pub head_dim: u32,
    /// FFN width (`intermediate_size`).
    pub intermediate_size: u32,
    /// Vocabulary size (`vocab_size`).
    pub vocab_size: u32,
    /// Bytes per weight and per KV element (bf16 = 2).
    pub dtype_bytes: u32,
    /// Total parameter count.
    pub params: u64,
    /// Tensor-parallel degree: the number of GPUs one model instance is split over.
    pub tensor_parallel: u32,
}

/// The CLI names of the model presets.
pub const MODEL_PRESETS: [&str; 5] = [
    "llama3-8b",
    "llama2-7b",
    "llama2-13b",
    "codellama-34b",
    "llama3-70b",
];

/// Builds a single-GPU, bf16 Llama-shaped spec whose parameter count is computed from the shape.
fn llama(name: &str, shape: [u32; 6], tensor_parallel: u32) -> ModelSpec {
    let [
        layers,
        hidden_size,
        attention_heads,
        kv_heads,
        intermediate_size,
        vocab_size,
    ] = shape;
    let mut spec = ModelSpec {
        name: name.to_string(),
        layers,
        hidden_size,
        attention_heads,
        kv_heads,
        head_dim: hidden_size / attention_heads,
        intermediate_size,
        vocab_size,
        dtype_bytes: 2,
        params: 0,
        tensor_parallel,
    };
    spec.params = spec.params_from_shape();
    spec
}

impl ModelSpec {
    /// Meta-Llama-3-8B: 32 layers, hidden 4096, 32 heads, 8 KV heads, FFN 14336, vocab 128256,
    /// bf16 (config.json of `meta-llama/Meta-Llama-3-8B`); 8.03 B parameters.
    pub fn llama3_8b() -> ModelSpec {
        llama("llama3-8b", [32, 4096, 32, 8, 14336, 128_256], 1)
    }

    /// Llama-2-7B: 32 layers, hidden 4096, 32 heads, 32 KV heads (no GQA), FFN 11008, vocab
    /// 32000 (config.json of `meta-llama/Llama-2-7b-hf`); 6.74 B parameters.
    pub fn llama2_7b() -> ModelSpec {
        llama("llama2-7b", [32, 4096, 32, 32, 11008, 32_000], 1)
    }

    /// Llama-2-13B: 40 layers, hidden 5120, 40 heads, 40 KV heads, FFN 13824, vocab 32000
    /// (config.json of `meta-llama/Llama-2-13b-hf`); 13.0 B parameters.
    pub fn llama2_13b() -> ModelSpec {
        llama("llama2-13b", [40, 5120, 40, 40, 13824, 32_000], 1)
    }

    /// CodeLlama-34B: 48 layers, hidden 8192, 64 heads, 8 KV heads, FFN 22016, vocab 32000
    /// (config.json of `codellama/CodeLlama-34b-hf`); 33.7 B parameters. Its bf16 weights
    /// (67 GB) fit one 80 GB GPU only barely, so the preset is single-GPU and is meant for H200
    /// or for a `tensor_parallel` override.
    pub fn codellama_34b() -> ModelSpec {
        llama("codellama-34b", [48, 8192, 64, 8, 22016, 32_000], 1)
    }

    /// Meta-Llama-3-70B: 80 layers, hidden 8192, 64 heads, 8 KV heads, FFN 28672, vocab 128256
    /// (config.json of `meta-llama/Meta-Llama-3-70B`); 70.6 B parameters. **Tensor parallel 4
    /// by default**: 141 GB of bf16 weights do not fit one GPU, and four 80 GB GPUs leave room
    /// for KV and adapters.
    pub fn llama3_70b() -> ModelSpec {
        llama("llama3-70b", [80, 8192, 64, 8, 28672, 128_256], 4)
    }

    /// The preset with this CLI name (see [`MODEL_PRESETS`]).
    pub fn preset(name: &str) -> Result<ModelSpec, ConfigError> {
        match name {
            "llama3-8b" => Ok(ModelSpec::llama3_8b()),
            "llama2-7b" => Ok(ModelSpec::llama2_7b()),
            "llama2-13b" => Ok(ModelSpec::llama2_13b()),
            "codellama-34b" => Ok(ModelSpec::codellama_34b()),
            "llama3-70b" => Ok(ModelSpec::llama3_70b()),
            _ => Err(ConfigError::UnknownModel {
                name: name.to_string(),
                valid: MODEL_PRESETS.join(", "),
            }),
        }
    }

    /// Parameter count implied by the shape: untied input embedding and LM head
    /// (`2 × vocab × hidden`), per layer q, k, v, o, gate, up, down and two RMSNorm weight
    /// vectors, and the final norm. Llama-3-8B gives 8,030,261,248.
    pub fn params_from_shape(&self) -> u64 {
        let h = u64::from(self.hidden_size);
        let per_layer: u64 = LoraTarget::ALL
            .into_iter()
            .map(|t| {
                let (input, output) = self.projection_dims(t);
                input * output
            })
            .sum::<u64>()
            + 2 * h;
        2 * u64::from(self.vocab_size) * h + u64::from(self.layers) * per_layer + h
    }

    /// `(input, output)` width of a projection.
    pub fn projection_dims(&self, target: LoraTarget) -> (u64, u64) {
        let h = u64::from(self.hidden_size);
        let q = u64::from(self.attention_heads) * u64::from(self.head_dim);
        let kv = u64::from(self.kv_heads) * u64::from(self.head_dim);
        let ffn = u64::from(self.intermediate_size);
        match target {
            LoraTarget::Q => (h, q),
            LoraTarget::K | LoraTarget::V => (h, kv),
            LoraTarget::O => (q, h),
            LoraTarget::Gate | LoraTarget::Up => (h, ffn),
            LoraTarget::Down => (ffn, h),
        }
    }

    fn tp(&self) -> u64 {
        u64::from(self.tensor_parallel.max(1))
    }

    /// Bytes of K and V for one token across all layers of the whole model:
    /// `2 × layers × kv_heads × head_dim × dtype_bytes` (Llama-3-8B: 128 KiB; Llama-2-7B:
    /// 512 KiB).
    pub fn kv_bytes_per_token(&self) -> u64 {
        2 * u64::from(self.layers)
            * u64::from(self.kv_heads)
            * u64::from(self.head_dim)
            * u64::from(self.dtype_bytes)
    }

    /// KV bytes per token held by one GPU under tensor parallelism: each GPU holds
    /// `ceil(kv_heads / TP)` heads (heads are replicated when there are fewer than GPUs, as in
    /// vLLM). Llama-3-70B at TP 4: 2 of its 8 KV heads per GPU.
    pub fn kv_bytes_per_token_per_gpu(&self) -> u64 {
        let heads_per_gpu = u64::from(self.kv_heads).div_ceil(self.tp());
        2 * u64::from(self.layers)
            * heads_per_gpu
            * u64::from(self.head_dim)
            * u64::from(self.dtype_bytes)
    }

    /// Bytes of one rank of a LoRA adapter on the whole model. Each targeted projection of
    /// width `in → out` carries `A: in × r` and `B: r × out` in every layer, so one rank costs
    /// `layers × Σ_targets (in + out) × dtype_bytes`. Llama-3-8B: 1.625 MiB per rank on
    /// [`LoraTargets::ATTENTION`], 5 MiB per rank on [`LoraTargets::ALL_LINEAR`] (so rank 16 is
    /// 80 MiB).
    pub fn lora_bytes_per_rank(&self, targets: LoraTargets) -> u64 {
        let per_layer: u64 = targets
            .iter()
            .map(|t| {
                let (input, output) = self.projection_dims(t);
                input + output
            })
            .sum();
        u64::from(self.layers) * per_layer * u64::from(self.dtype_bytes)
    }

    /// Bytes of one LoRA rank held by one GPU under tensor parallelism, sharded as vLLM does
    /// (without `fully_sharded_loras`): for a column-parallel projection `A` is replicated and
    /// `B` split (`in + out/TP`); for a row-parallel one (`o`, `down`) `A` is split and `B`
    /// replicated (`in/TP + out`). Equals [`ModelSpec::lora_bytes_per_rank`] at TP 1.
    pub fn lora_bytes_per_rank_per_gpu(&self, targets: LoraTargets) -> u64 {
        let tp = self.tp();
        let per_layer: u64 = targets
            .iter()
            .map(|t| {
                let (input, output) = self.projection_dims(t);
                if t.is_column_parallel() {
                    input + output.div_ceil(tp)
                } else {
                    input.div_ceil(tp) + output
                }
            })
            .sum();
        u64::from(self.layers) * per_layer * u64::from(self.dtype_bytes)
    }

    /// Bytes of an adapter of `rank` on the whole model.
    pub fn lora_bytes(&self, rank: u32, targets: LoraTargets) -> u64 {
        u64::from(rank) * self.lora_bytes_per_rank(targets)
    }

    /// Bytes of the base model's weights: `params × dtype_bytes`.
    pub fn weight_bytes(&self) -> u64 {
        self.params * u64::from(self.dtype_bytes)
    }

    /// Weight bytes held by one GPU: `weight_bytes / TP` (norm vectors, replicated, are
    /// negligible).
    pub fn weight_bytes_per_gpu(&self) -> u64 {
        self.weight_bytes().div_ceil(self.tp())
    }

    /// Parameters that take part in a matrix multiply per token: all but the input embedding
    /// table, which is a lookup. Used for the `2 × params` FLOPs rule.
    pub fn matmul_params(&self) -> u64 {
        self.params
            .saturating_sub(u64::from(self.vocab_size) * u64::from(self.hidden_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn kv_bytes_per_token_match_known_sizes() {
        assert_eq!(ModelSpec::llama3_8b().kv_bytes_per_token(), 128 * KIB);
        assert_eq!(ModelSpec::llama2_7b().kv_bytes_per_token(), 512 * KIB);
        assert_eq!(ModelSpec::llama2_13b().kv_bytes_per_token(), 800 * KIB);
        let l70 = ModelSpec::llama3_70b();
        assert_eq!(l70.kv_bytes_per_token(), 320 * KIB);
        assert_eq!(l70.kv_bytes_per_token_per_gpu(), 80 * KIB);
    }

    #[test]
    fn parameter_counts_match_model_cards() {
        assert_eq!(ModelSpec::llama3_8b().params, 8_030_261_248);
        // Published: 6.74 B, 13.0 B, 33.7 B, 70.6 B.
        let expect = [
            (ModelSpec::llama2_7b(), 6.74e9),
            (ModelSpec::llama2_13b(), 13.0e9),
            (ModelSpec::codellama_34b(), 33.7e9),
            (ModelSpec::llama3_70b(), 70.6e9),
        ];
        for (spec, published) in expect {
            let rel = (spec.params as f64 - published).abs() / published;
            assert!(rel < 0.005, "{}: {} vs {published}", spec.name, spec.params);
        }
    }

    #[test]
    fn lora_sizes() {
        let m = ModelSpec::llama3_8b();
        // Attention: layers 32 × (8192 + 5120 + 5120 + 8192) × 2 bytes = 1.625 MiB per rank.
        assert_eq!(m.lora_bytes_per_rank(LoraTargets::ATTENTION), 1664 * KIB);
        assert_eq!(m.lora_bytes_per_rank(LoraTargets::default()), 1664 * KIB);
        // DESIGN §9: a rank-16 all-linear Llama-3-8B adapter is about 80 MiB.
        assert_eq!(m.lora_bytes(16, LoraTargets::ALL_LINEAR), 80 * MIB);
        assert_eq!(
            m.lora_bytes_per_rank_per_gpu(LoraTargets::ALL_LINEAR),
            m.lora_bytes_per_rank(LoraTargets::ALL_LINEAR)
        );
    }

    #[test]
    fn lora_per_gpu_share_under_tensor_parallel() {
        let m = ModelSpec::llama3_70b();
        let full = m.lora_bytes_per_rank(LoraTargets::ATTENTION);
        let per_gpu = m.lora_bytes_per_rank_per_gpu(LoraTargets::ATTENTION);
        // q: 8192 + 8192/4, k,v: 8192 + 1024/4, o: 8192/4 + 8192, per layer, 80 layers, bf16.
        let per_layer = (8192 + 2048) + 2 * (8192 + 256) + (2048 + 8192);
        assert_eq!(per_gpu, 80 * per_layer * 2);
        assert!(per_gpu < full && per_gpu > full / 4);
        assert_eq!(m.weight_bytes_per_gpu(), m.weight_bytes().div_ceil(4));
    }

    #[test]
    fn targets_parse_and_reject() {
        let set = LoraTargets::from_names(&["q_proj", "v"]).expect("valid names");
        assert!(set.contains(LoraTarget::Q) && set.contains(LoraTarget::V));
        assert!(!set.contains(LoraTarget::K));
        assert_eq!(
            LoraTargets::from_names(&["q", "mlp"]),
            Err("mlp".to_string())
        );
    }

    #[test]
    fn unknown_preset_lists_valid_names() {
        let err = ModelSpec::preset("gpt-5").expect_err("unknown");
        let msg = err.to_string();
        for name in MODEL_PRESETS {
            assert!(msg.contains(name), "{msg}");
            assert!(ModelSpec::preset(name).is_ok());
        }
    }
}
