//! The tensors of a Llama checkpoint: canonical (Hugging Face) names, GGUF names, and the
//! shape the config implies for each.

use super::LlamaConfig;

/// The token embedding, `vocab × hidden`.
pub const EMBED: &str = "model.embed_tokens.weight";
/// The final RMSNorm weight, `hidden`.
pub const NORM: &str = "model.norm.weight";
/// The LM head, `vocab × hidden` (the embedding itself when the embeddings are tied).
pub const LM_HEAD: &str = "lm_head.weight";

/// One tensor of a decoder layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerTensor {
    /// `self_attn.q_proj`, `heads·head_dim × hidden`.
    Q,
    /// `self_attn.k_proj`, `kv_heads·head_dim × hidden`.
    K,
    /// `self_attn.v_proj`, `kv_heads·head_dim × hidden`.
    V,
    /// `self_attn.o_proj`, `hidden × heads·head_dim`.
    O,
    /// `mlp.gate_proj`, `ffn × hidden`.
    Gate,
    /// `mlp.up_proj`, `ffn × hidden`.
    Up,
    /// `mlp.down_proj`, `hidden × ffn`.
    Down,
    /// `input_layernorm`, `hidden`.
    InputNorm,
    /// `post_attention_layernorm`, `hidden`.
    PostNorm,
}

impl LayerTensor {
    /// Every tensor of a layer.
    pub const ALL: [LayerTensor; 9] = [
        LayerTensor::Q,
        LayerTensor::K,
        LayerTensor::V,
        LayerTensor::O,
        LayerTensor::Gate,
        LayerTensor::Up,
        LayerTensor::Down,
        LayerTensor::InputNorm,
        LayerTensor::PostNorm,
    ];

    /// `(Hugging Face suffix, GGUF suffix)` of the tensor's name.
    fn suffixes(self) -> (&'static str, &'static str) {
        match self {
            LayerTensor::Q => ("self_attn.q_proj.weight", "attn_q.weight"),
            LayerTensor::K => ("self_attn.k_proj.weight", "attn_k.weight"),
            LayerTensor::V => ("self_attn.v_proj.weight", "attn_v.weight"),
            LayerTensor::O => ("self_attn.o_proj.weight", "attn_output.weight"),
            LayerTensor::Gate => ("mlp.gate_proj.weight", "ffn_gate.weight"),
            LayerTensor::Up => ("mlp.up_proj.weight", "ffn_up.weight"),
            LayerTensor::Down => ("mlp.down_proj.weight", "ffn_down.weight"),
            LayerTensor::InputNorm => ("input_layernorm.weight", "attn_norm.weight"),
            LayerTensor::PostNorm => ("post_attention_layernorm.weight", "ffn_norm.weight"),
        }
    }

    /// The canonical name in layer `layer`: `model.layers.{layer}.self_attn.q_proj.weight`, ….
    pub fn name(self, layer: usize) -> String {
        format!("model.layers.{layer}.{}", self.suffixes().0)
    }

    /// The GGUF name in layer `layer`: `blk.{layer}.attn_q.weight`, ….
    pub fn gguf_name(self, layer: usize) -> String {
        format!("blk.{layer}.{}", self.suffixes().1)
    }

    /// `rows × cols` the config implies (`1 × hidden` for the norms).
    pub fn shape(self, c: &LlamaConfig) -> (usize, usize) {
        let (q, kv) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        match self {
            LayerTensor::Q => (q, c.hidden),
            LayerTensor::K | LayerTensor::V => (kv, c.hidden),
            LayerTensor::O => (c.hidden, q),
            LayerTensor::Gate | LayerTensor::Up => (c.ffn, c.hidden),
            LayerTensor::Down => (c.hidden, c.ffn),
            LayerTensor::InputNorm | LayerTensor::PostNorm => (1, c.hidden),
        }
    }
}

/// A tensor the model needs: canonical name, GGUF name, shape, and for Q and K the head count
/// llama.cpp's converter permuted its rows by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Hugging Face name.
    pub name: String,
    /// GGUF name.
    pub gguf_name: String,
    /// Rows the config implies.
    pub rows: usize,
    /// Columns the config implies.
    pub cols: usize,
    /// `Some(heads)` for Q (query heads) and K (KV heads).
    pub rope_heads: Option<usize>,
}

/// Every tensor a checkpoint of `config` stores, in file order (embedding, layers, final
/// norm, then the LM head unless the embeddings are tied).
pub fn expected_tensors(config: &LlamaConfig) -> Vec<Expected> {
    let global = |name: &str, gguf: &str, rows, cols| Expected {
        name: name.to_string(),
        gguf_name: gguf.to_string(),
        rows,
        cols,
        rope_heads: None,
    };
    let mut out = vec![global(
        EMBED,
        "token_embd.weight",
        config.vocab,
        config.hidden,
    )];
    for layer in 0..config.layers {
        for t in LayerTensor::ALL {
            let (rows, cols) = t.shape(config);
            let rope_heads = match t {
                LayerTensor::Q => Some(config.heads),
                LayerTensor::K => Some(config.kv_heads),
                _ => None,
            };
            out.push(Expected {
                name: t.name(layer),
                gguf_name: t.gguf_name(layer),
                rows,
                cols,
                rope_heads,
            });
        }
    }
    out.push(global(NORM, "output_norm.weight", 1, config.hidden));
    if !config.tied_embeddings {
        out.push(global(
            LM_HEAD,
            "output.weight",
            config.vocab,
            config.hidden,
        ));
    }
    out
}
