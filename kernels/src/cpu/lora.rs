//! LoRA adapters on the attention projections, in the layout the forward pass multiplies.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::init::matrix;

/// The two factors of one adapted projection: `Δy = x · a · b · scale`.
///
/// `a` is row-major `input × rank` and `b` is row-major `rank × output`. PEFT stores
/// `lora_A.weight` as `rank × input` and `lora_B.weight` as `output × rank` (PyTorch's
/// `out × in`), so `a` is `lora_A.weightᵀ` and `b` is `lora_B.weightᵀ`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraPair {
    /// `input × rank`, row-major.
    pub a: Vec<f32>,
    /// `rank × output`, row-major.
    pub b: Vec<f32>,
}

/// A LoRA adapter on q, k, v and o of every layer.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuLora {
    rank: usize,
    scale: f32,
    /// Per layer, the q, k, v, o pairs in that order.
    layers: Vec<[LoraPair; 4]>,
}

impl CpuLora {
    /// An adapter from its parts, checked against `config`: one entry per layer, each the
    /// q, k, v, o pairs (see [`CpuModelConfig::attention_dims`]); `scale` is PEFT's
    /// `lora_alpha / r`.
    pub fn from_parts(
        config: &CpuModelConfig,
        rank: usize,
        scale: f32,
        layers: Vec<[LoraPair; 4]>,
    ) -> Result<Self> {
        let bad = |reason: String| Err(CpuError::LoraShape { reason });
        if rank == 0 || !scale.is_finite() {
            return bad(format!(
                "rank {rank} must be positive, scale {scale} finite"
            ));
        }
        if layers.len() != config.layers {
            return bad(format!(
                "{} layers, model has {}",
                layers.len(),
                config.layers
            ));
        }
        for (l, pairs) in layers.iter().enumerate() {
            for (t, (pair, (input, output))) in
                pairs.iter().zip(config.attention_dims()).enumerate()
            {
                if pair.a.len() != input * rank || pair.b.len() != rank * output {
                    return bad(format!(
                        "layer {l} {}: A has {} floats, B {}; need {input}×{rank} and {rank}×{output}",
                        ["q", "k", "v", "o"][t],
                        pair.a.len(),
                        pair.b.len()
                    ));
                }
            }
        }
        Ok(CpuLora {
            rank,
            scale,
            layers,
        })
    }

    /// A random adapter for tests: `a` with variance `1 / input`, `b` with variance
    /// `1 / (4·rank)` (unlike PEFT's zero-initialised `b`, so the adapter changes the output).
    pub fn random(config: &CpuModelConfig, rank: usize, scale: f32, seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = (0..config.layers)
            .map(|_| {
                config.attention_dims().map(|(input, output)| LoraPair {
                    a: matrix(&mut rng, input, rank, 1.0),
                    b: matrix(&mut rng, rank, output, 0.5),
                })
            })
            .collect();
        CpuLora::from_parts(config, rank, scale, layers)
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The factor `Δy` is multiplied by.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The q, k, v, o pairs of layer `layer`.
    pub fn layer(&self, layer: usize) -> Option<&[LoraPair; 4]> {
        self.layers.get(layer)
    }

    /// Checks the adapter still fits `config` (a model of another shape).
    pub(crate) fn check(&self, config: &CpuModelConfig) -> Result<()> {
        if self.layers.len() != config.layers {
            return Err(CpuError::LoraShape {
                reason: format!("{} layers, model has {}", self.layers.len(), config.layers),
            });
        }
        let fits = self.layers.iter().all(|pairs| {
            pairs
                .iter()
                .zip(config.attention_dims())
                .all(|(p, (i, o))| p.a.len() == i * self.rank && p.b.len() == self.rank * o)
        });
        if fits {
            Ok(())
        } else {
            Err(CpuError::LoraShape {
                reason: "projection widths differ from the model's".into(),
            })
        }
    }
}
