//! The base model's weights, in PyTorch's `out × in` layout and shared: a real checkpoint's
//! tensors (memory-mapped where the file allows, see [`CpuModel::from_checkpoint`]) or the
//! built-in random ones.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::CpuModelConfig;
use super::error::Result;
use super::init::matrix;
use crate::checkpoint::Weights;

/// A weight matrix: `rows` (outputs) × `cols` (inputs), row-major, read-only and shared by
/// every holder of the model (cloning is cheap).
#[derive(Clone, Debug)]
pub(crate) struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Weights,
}

impl Matrix {
    /// The values, row-major `rows × cols`.
    pub fn as_slice(&self) -> &[f32] {
        self.data.as_slice()
    }

    /// Row `r` (an embedding's token vector).
    pub fn row(&self, r: usize) -> &[f32] {
        &self.as_slice()[r * self.cols..][..self.cols]
    }

    /// A copy in the `in × out` layout (row-major `cols × rows`), for the CUDA upload.
    pub fn to_input_major(&self) -> Vec<f32> {
        let values = self.as_slice();
        let mut out = vec![0.0; values.len()];
        for (r, row) in values.chunks_exact(self.cols).enumerate() {
            for (c, v) in row.iter().enumerate() {
                out[c * self.rows + r] = *v;
            }
        }
        out
    }

    /// The same matrix with every value rounded to bf16 (nearest, ties to even) and widened
    /// back to f32: what the CUDA GEMM reads from bf16 weights.
    fn rounded_to_bf16(&self) -> Matrix {
        let values: Vec<f32> = self
            .as_slice()
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f32())
            .collect();
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: values.into(),
        }
    }

    /// The random matrix `init::matrix` draws for an `input × output` projection, stored
    /// `output × input`: the same numbers the model drew before it kept PyTorch's layout.
    fn random(rng: &mut ChaCha8Rng, input: usize, output: usize, gain: f32) -> Matrix {
        let drawn = matrix(rng, input, output, gain);
        let mut t = vec![0.0; drawn.len()];
        for (i, row) in drawn.chunks_exact(output).enumerate() {
            for (o, v) in row.iter().enumerate() {
                t[o * input + i] = *v;
            }
        }
        Matrix {
            rows: output,
            cols: input,
            data: t.into(),
        }
    }
}

/// Weights of one decoder layer.
#[derive(Clone, Debug)]
pub(crate) struct LayerWeights {
    pub attn_norm: Vec<f32>,
    /// q, k, v, o in that order (see [`CpuModelConfig::attention_dims`]).
    pub attn: [Matrix; 4],
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
}

/// A Llama-family transformer on the CPU: a real checkpoint's or a random one of any shape. It
/// holds no KV: the cache lives in a [`KvArena`](super::KvArena) the caller owns, so one model
/// (in an `Arc`) serves any number of sequences and shards.
#[derive(Clone, Debug)]
pub struct CpuModel {
    pub(crate) config: CpuModelConfig,
    /// `vocab × hidden`.
    pub(crate) embed: Matrix,
    pub(crate) layers: Vec<LayerWeights>,
    pub(crate) final_norm: Vec<f32>,
    /// `vocab × hidden` (the embedding itself when tied).
    pub(crate) lm_head: Matrix,
}

impl CpuModel {
    /// A model of shape `config` with weights drawn from ChaCha8 seeded by `seed`: the same
    /// seed gives the same model on every machine. Projections have variance `1 / input`;
    /// the residual writers (o, down) are scaled by `1/√(2·layers)` as in GPT-2, and norms
    /// start at one. With `tied_embeddings` the LM head is the embedding.
    pub fn random(config: CpuModelConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = &config;
        let residual_gain = 1.0 / ((2 * c.layers) as f32).sqrt();
        let embed = Matrix {
            rows: c.vocab,
            cols: c.hidden,
            data: matrix(&mut rng, c.vocab, c.hidden, (c.vocab as f32).sqrt()).into(),
        };
        let layers = (0..c.layers)
            .map(|_| {
                let [q, k, v, o] = c.attention_dims();
                LayerWeights {
                    attn_norm: vec![1.0; c.hidden],
                    attn: [
                        Matrix::random(&mut rng, q.0, q.1, 1.0),
                        Matrix::random(&mut rng, k.0, k.1, 1.0),
                        Matrix::random(&mut rng, v.0, v.1, 1.0),
                        Matrix::random(&mut rng, o.0, o.1, residual_gain),
                    ],
                    ffn_norm: vec![1.0; c.hidden],
                    gate: Matrix::random(&mut rng, c.hidden, c.ffn, 1.0),
                    up: Matrix::random(&mut rng, c.hidden, c.ffn, 1.0),
                    down: Matrix::random(&mut rng, c.ffn, c.hidden, residual_gain),
                }
            })
            .collect();
        let lm_head = if c.tied_embeddings {
            embed.clone()
        } else {
            Matrix::random(&mut rng, c.hidden, c.vocab, 1.0)
        };
        Ok(CpuModel {
            final_norm: vec![1.0; c.hidden],
            config,
            embed,
            layers,
            lm_head,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &CpuModelConfig {
        &self.config
    }

    /// The CPU reference of the CUDA model with bf16 GEMM weights
    /// ([`WeightPrecision::Bf16`](crate::cuda::WeightPrecision)): the q, k, v, o, gate, up,
    /// down and LM head matrices rounded to bf16 (the LM head also when it is the tied
    /// embedding), the embedding and the norms kept in f32. The weights are copied.
    pub fn with_bf16_gemm_weights(&self) -> CpuModel {
        let layers = self
            .layers
            .iter()
            .map(|l| LayerWeights {
                attn_norm: l.attn_norm.clone(),
                attn: l.attn.each_ref().map(Matrix::rounded_to_bf16),
                ffn_norm: l.ffn_norm.clone(),
                gate: l.gate.rounded_to_bf16(),
                up: l.up.rounded_to_bf16(),
                down: l.down.rounded_to_bf16(),
            })
            .collect();
        CpuModel {
            config: self.config.clone(),
            embed: self.embed.clone(),
            layers,
            final_norm: self.final_norm.clone(),
            lm_head: self.lm_head.rounded_to_bf16(),
        }
    }

    /// Bytes of weights held in owned memory (not memory-mapped). Shared holders of one model
    /// (an `Arc`) count them once.
    pub fn owned_weight_bytes(&self) -> usize {
        let owned = |m: &Matrix| {
            if m.data.is_mapped() {
                0
            } else {
                m.data.len() * 4
            }
        };
        let head = if self.config.tied_embeddings {
            0
        } else {
            owned(&self.lm_head)
        };
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.attn.iter().map(owned).sum::<usize>()
                    + owned(&l.gate)
                    + owned(&l.up)
                    + owned(&l.down)
                    + (l.attn_norm.len() + l.ffn_norm.len()) * 4
            })
            .sum();
        owned(&self.embed) + head + layers + self.final_norm.len() * 4
    }
}
