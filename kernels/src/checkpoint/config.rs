//! The shape and constants of a Llama-family model, as read from a checkpoint.

use std::path::Path;

use super::error::{CheckpointError, Result};
use crate::model::ModelSpec;

/// The shape and constants of a `LlamaForCausalLM`, from GGUF metadata or `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Decoder layers.
    pub layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` under GQA; divides `heads`).
    pub kv_heads: usize,
    /// Width of one head (even: RoPE rotates pairs).
    pub head_dim: usize,
    /// FFN width.
    pub ffn: usize,
    /// Vocabulary size (rows of the embedding).
    pub vocab: usize,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// Context length the model was trained for.
    pub context_len: usize,
    /// Whether the LM head is the token embedding.
    pub tied_embeddings: bool,
    /// The model's name (`general.name`, or the folder's name).
    pub name: String,
}

/// The file's own name for each [`LlamaConfig`] field, so errors name what the user can see.
pub(crate) struct FieldNames {
    pub layers: &'static str,
    pub hidden: &'static str,
    pub heads: &'static str,
    pub kv_heads: &'static str,
    pub head_dim: &'static str,
    pub ffn: &'static str,
    pub vocab: &'static str,
    pub rope_theta: &'static str,
    pub rms_eps: &'static str,
    pub context_len: &'static str,
}

impl LlamaConfig {
    /// `heads × head_dim`: the width of Q and of the attention output.
    pub fn q_dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// `kv_heads × head_dim`: the width of K and V.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Parameters stored: embedding, layers, final norm, and the LM head unless tied.
    pub fn params(&self) -> u64 {
        let per_layer: u64 = super::names::LayerTensor::ALL
            .into_iter()
            .map(|t| {
                let (rows, cols) = t.shape(self);
                (rows * cols) as u64
            })
            .sum();
        let table = (self.vocab * self.hidden) as u64;
        let head = if self.tied_embeddings { 0 } else { table };
        table + self.layers as u64 * per_layer + self.hidden as u64 + head
    }

    /// The shape as the planner and the cost model see it: f32 weights and KV (`dtype_bytes =
    /// 4`, the CPU backend's), one device, and `params` as stored (a tied embedding counted
    /// once, so `weight_bytes` is what the process holds).
    pub fn model_spec(&self) -> ModelSpec {
        // `validate` keeps every size below 2^31.
        let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        ModelSpec {
            name: self.name.clone(),
            layers: u(self.layers),
            hidden_size: u(self.hidden),
            attention_heads: u(self.heads),
            kv_heads: u(self.kv_heads),
            head_dim: u(self.head_dim),
            intermediate_size: u(self.ffn),
            vocab_size: u(self.vocab),
            dtype_bytes: 4,
            params: self.params(),
            tensor_parallel: 1,
        }
    }

    /// Checks what a forward pass relies on; errors name the field as `file` calls it.
    pub(crate) fn validate(&self, path: &Path, names: &FieldNames) -> Result<()> {
        let invalid = |field: &str, reason: String| CheckpointError::InvalidField {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let sizes = [
            (names.layers, self.layers),
            (names.hidden, self.hidden),
            (names.heads, self.heads),
            (names.kv_heads, self.kv_heads),
            (names.head_dim, self.head_dim),
            (names.ffn, self.ffn),
            (names.vocab, self.vocab),
            (names.context_len, self.context_len),
        ];
        for (field, value) in sizes {
            if value == 0 || value > 1 << 31 {
                return Err(invalid(field, format!("{value} is not in 1..=2^31")));
            }
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            let reason = format!(
                "{} query heads are not a multiple of {} KV heads",
                self.heads, self.kv_heads
            );
            return Err(invalid(names.kv_heads, reason));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(invalid(
                names.head_dim,
                format!("{} is odd; RoPE rotates pairs", self.head_dim),
            ));
        }
        let biggest = [
            self.q_dim() * self.hidden,
            self.ffn * self.hidden,
            self.vocab * self.hidden,
        ];
        if biggest.iter().any(|&n| n > 1 << 40) {
            return Err(invalid(
                names.hidden,
                "tensors of more than 2^40 elements".into(),
            ));
        }
        for (field, value) in [
            (names.rope_theta, self.rope_theta),
            (names.rms_eps, self.rms_eps),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(
                    field,
                    format!("{value} is not a positive finite number"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M's shape.
    pub(crate) fn smollm2() -> LlamaConfig {
        LlamaConfig {
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
            name: "smollm2".into(),
        }
    }

    #[test]
    fn smollm2_has_its_published_parameter_count() {
        // 134,515,008 elements in the GGUF file's 272 tensors.
        assert_eq!(smollm2().params(), 134_515_008);
        let spec = smollm2().model_spec();
        // 2 × 30 layers × 3 KV heads × 64 × 4 bytes.
        assert_eq!(spec.kv_bytes_per_token(), 46_080);
        assert_eq!(spec.weight_bytes(), 134_515_008 * 4);
    }
}
