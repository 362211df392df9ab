//! The shape of the CPU model and the sizes derived from it.

use super::error::{CpuError, Result};
use crate::model::{LoraTarget, ModelSpec};

/// Positions the random model accepts: it was never trained, so this is only a bound that keeps
/// a runaway sequence from growing without limit.
pub const RANDOM_CONTEXT_LEN: usize = 1 << 17;

/// Shape of the Llama-family model the CPU backend runs: the built-in random one or a real
/// checkpoint's ([`CpuModelConfig::from_llama`]). All widths are counts of `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuModelConfig {
    /// Decoder layers.
    pub layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`; must divide it).
    pub kv_heads: usize,
    /// Width of one head (even, for RoPE).
    pub head_dim: usize,
    /// FFN (SwiGLU) width.
    pub ffn: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// RoPE base.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// Positions a sequence may reach (`start_pos + tokens`); a pass beyond it is refused.
    pub context_len: usize,
    /// Whether the LM head is the embedding matrix (checkpoints with `tie_word_embeddings`).
    pub tied_embeddings: bool,
    /// The model's name, for reports and as PEFT's `base_model_name_or_path`.
    pub name: String,
}

impl Default for CpuModelConfig {
    /// Small enough for a 2-core machine: 4 layers, hidden 256, 8 heads of 32, 4 KV heads,
    /// FFN 512, vocabulary 1024 (about 2.9 M parameters, 11.5 MiB of f32).
    fn default() -> Self {
        CpuModelConfig {
            layers: 4,
            hidden: 256,
            heads: 8,
            kv_heads: 4,
            head_dim: 32,
            ffn: 512,
            vocab: 1024,
            rope_theta: 10_000.0,
            rms_eps: 1e-5,
            context_len: RANDOM_CONTEXT_LEN,
            tied_embeddings: false,
            name: "cpu-random".to_string(),
        }
    }
}

fn invalid(reason: impl Into<String>) -> CpuError {
    CpuError::Config {
        reason: reason.into(),
    }
}

impl CpuModelConfig {
    /// A model small enough for tests to run many passes: 2 layers, hidden 64, 4 heads of 16,
    /// 2 KV heads, FFN 128, vocabulary 256 (8 KiB KV pages of 16 tokens).
    pub fn tiny() -> Self {
        CpuModelConfig {
            layers: 2,
            hidden: 64,
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            ffn: 128,
            vocab: 256,
            ..CpuModelConfig::default()
        }
    }

    /// SmolLM2-135M's shape (30 layers, hidden 576, 9 heads and 3 KV heads of 64, FFN 1536,
    /// vocabulary 49,152, RoPE base 100,000, tied embeddings, context 8,192): what the
    /// benchmarks and the real-shape tests run with random weights when the file is absent.
    pub fn smollm2_135m() -> Self {
        CpuModelConfig {
            layers: 30,
            hidden: 576,
            heads: 9,
            kv_heads: 3,
            head_dim: 64,
            ffn: 1536,
            vocab: 49_152,
            rope_theta: 100_000.0,
            rms_eps: 1e-5,
            context_len: 8192,
            tied_embeddings: true,
            name: "SmolLM2-135M-Instruct".to_string(),
        }
    }

    /// Checks that the shape is usable.
    pub fn validate(&self) -> Result<()> {
        let widths = [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("ffn", self.ffn),
            ("vocab", self.vocab),
        ];
        if let Some((name, _)) = widths.iter().find(|(_, w)| *w == 0) {
            return Err(invalid(format!("{name} must be positive")));
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(invalid(format!(
                "heads ({}) must be a multiple of kv_heads ({})",
                self.heads, self.kv_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(invalid("head_dim must be even for RoPE"));
        }
        if u32::try_from(self.vocab).is_err() {
            return Err(invalid("vocab must fit a u32 token id"));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(invalid("rope_theta must be finite and above 1"));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return Err(invalid("rms_eps must be finite and positive"));
        }
        if self.context_len == 0 {
            return Err(invalid("context_len must be positive"));
        }
        Ok(())
    }

    /// Width of all query heads (`heads × head_dim`).
    pub fn q_dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of all KV heads (`kv_heads × head_dim`): one token's K (or V) in one layer.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// The KV head query head `head` reads under grouped-query attention.
    pub fn kv_head_of(&self, head: usize) -> usize {
        head / (self.heads / self.kv_heads)
    }

    /// Floats of KV per token, all layers, K and V: `2 × layers × kv_heads × head_dim`.
    pub fn kv_floats_per_token(&self) -> usize {
        2 * self.layers * self.kv_dim()
    }

    /// Bytes of KV per token in f32; what `PageGeometry::for_model` takes, and equal to
    /// [`ModelSpec::kv_bytes_per_token`] of [`CpuModelConfig::model_spec`].
    pub fn kv_bytes_per_token(&self) -> u64 {
        (self.kv_floats_per_token() * size_of::<f32>()) as u64
    }

    /// Floats of one page holding a block of `block_tokens` tokens.
    pub fn page_floats(&self, block_tokens: usize) -> usize {
        block_tokens * self.kv_floats_per_token()
    }

    /// `(input, output)` widths of the q, k, v, o projections, in that order.
    pub fn attention_dims(&self) -> [(usize, usize); 4] {
        [
            (self.hidden, self.q_dim()),
            (self.hidden, self.kv_dim()),
            (self.hidden, self.kv_dim()),
            (self.q_dim(), self.hidden),
        ]
    }

    /// `(input, output)` widths of one projection (any of the seven a LoRA adapter can target).
    pub fn projection_dims(&self, target: LoraTarget) -> (usize, usize) {
        match target {
            LoraTarget::Q => (self.hidden, self.q_dim()),
            LoraTarget::K | LoraTarget::V => (self.hidden, self.kv_dim()),
            LoraTarget::O => (self.q_dim(), self.hidden),
            LoraTarget::Gate | LoraTarget::Up => (self.hidden, self.ffn),
            LoraTarget::Down => (self.ffn, self.hidden),
        }
    }

    /// The same shape as a [`ModelSpec`] (f32, one GPU), for the cost model and page planner.
    pub fn model_spec(&self) -> ModelSpec {
        let narrow = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let mut spec = ModelSpec {
            name: self.name.clone(),
            layers: narrow(self.layers),
            hidden_size: narrow(self.hidden),
            attention_heads: narrow(self.heads),
            kv_heads: narrow(self.kv_heads),
            head_dim: narrow(self.head_dim),
            intermediate_size: narrow(self.ffn),
            vocab_size: narrow(self.vocab),
            dtype_bytes: 4,
            params: 0,
            tensor_parallel: 1,
        };
        spec.params = spec.params_from_shape();
        spec
    }
}
