//! The base model's weights: random, seeded, scaled so activations stay finite.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::CpuModelConfig;
use super::error::Result;
use super::init::matrix;

/// Weights of one decoder layer; every matrix is row-major `input × output`.
#[derive(Clone, Debug)]
pub(crate) struct LayerWeights {
    pub attn_norm: Vec<f32>,
    /// q, k, v, o in that order (see [`CpuModelConfig::attention_dims`]).
    pub attn: [Vec<f32>; 4],
    pub ffn_norm: Vec<f32>,
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    pub down: Vec<f32>,
}

/// A small Llama-shaped transformer with random weights. It holds no KV: the cache lives in a
/// [`KvArena`](super::KvArena) the caller owns, so one model serves any number of sequences.
#[derive(Clone, Debug)]
pub struct CpuModel {
    pub(crate) config: CpuModelConfig,
    /// `vocab × hidden`.
    pub(crate) embed: Vec<f32>,
    pub(crate) layers: Vec<LayerWeights>,
    pub(crate) final_norm: Vec<f32>,
    /// `hidden × vocab`.
    pub(crate) lm_head: Vec<f32>,
}

impl CpuModel {
    /// A model of shape `config` with weights drawn from ChaCha8 seeded by `seed`: the same
    /// seed gives the same model on every machine. Projections have variance `1 / input`;
    /// the residual writers (o, down) are scaled by `1/√(2·layers)` as in GPT-2, and norms
    /// start at one.
    pub fn random(config: CpuModelConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = &config;
        let residual_gain = 1.0 / ((2 * c.layers) as f32).sqrt();
        let embed = matrix(&mut rng, c.vocab, c.hidden, (c.vocab as f32).sqrt());
        let layers = (0..c.layers)
            .map(|_| {
                let [q, k, v, o] = c.attention_dims();
                LayerWeights {
                    attn_norm: vec![1.0; c.hidden],
                    attn: [
                        matrix(&mut rng, q.0, q.1, 1.0),
                        matrix(&mut rng, k.0, k.1, 1.0),
                        matrix(&mut rng, v.0, v.1, 1.0),
                        matrix(&mut rng, o.0, o.1, residual_gain),
                    ],
                    ffn_norm: vec![1.0; c.hidden],
                    gate: matrix(&mut rng, c.hidden, c.ffn, 1.0),
                    up: matrix(&mut rng, c.hidden, c.ffn, 1.0),
                    down: matrix(&mut rng, c.ffn, c.hidden, residual_gain),
                }
            })
            .collect();
        let lm_head = matrix(&mut rng, c.hidden, c.vocab, 1.0);
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
}
