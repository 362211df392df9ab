//! LoRA adapters as the CPU model multiplies them, on any subset of the seven projections.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::init::matrix;
use crate::model::{LoraTarget, LoraTargets};

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

/// The pairs of one layer, indexed like [`LoraTarget::ALL`] (q, k, v, o, gate, up, down);
/// `None` where the adapter leaves the projection alone.
pub type LayerPairs = [Option<LoraPair>; 7];

/// A LoRA adapter on any of q, k, v, o, gate, up and down of every layer.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuLora {
    rank: usize,
    scale: f32,
    targets: LoraTargets,
    layers: Vec<LayerPairs>,
}

impl CpuLora {
    /// An adapter from its parts, checked against `config`: one entry per layer, each pair of
    /// the widths [`CpuModelConfig::projection_dims`] gives; `scale` is PEFT's
    /// `lora_alpha / r`. Its targets are the projections some layer has a pair for.
    pub fn from_parts(
        config: &CpuModelConfig,
        rank: usize,
        scale: f32,
        layers: Vec<LayerPairs>,
    ) -> Result<Self> {
        if rank == 0 || !scale.is_finite() {
            return Err(shape(format!(
                "rank {rank} must be positive, scale {scale} finite"
            )));
        }
        let mut targets = LoraTargets::NONE;
        for pairs in &layers {
            for (pair, t) in pairs.iter().zip(LoraTarget::ALL) {
                if pair.is_some() {
                    targets = targets.with(t);
                }
            }
        }
        let lora = CpuLora {
            rank,
            scale,
            targets,
            layers,
        };
        lora.check(config)?;
        Ok(lora)
    }

    /// A random adapter on q, k, v and o for tests (see [`CpuLora::random_on`]).
    pub fn random(config: &CpuModelConfig, rank: usize, scale: f32, seed: u64) -> Result<Self> {
        CpuLora::random_on(config, LoraTargets::ATTENTION, rank, scale, seed)
    }

    /// A random adapter on `targets` for tests: `a` with variance `1 / input`, `b` with
    /// variance `1 / (4·rank)` (unlike PEFT's zero-initialised `b`, so the adapter changes the
    /// output). Drawn layer by layer, target by target, `a` before `b`.
    pub fn random_on(
        config: &CpuModelConfig,
        targets: LoraTargets,
        rank: usize,
        scale: f32,
        seed: u64,
    ) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = (0..config.layers)
            .map(|_| {
                LoraTarget::ALL.map(|t| {
                    targets.contains(t).then(|| {
                        let (input, output) = config.projection_dims(t);
                        LoraPair {
                            a: matrix(&mut rng, input, rank, 1.0),
                            b: matrix(&mut rng, rank, output, 0.5),
                        }
                    })
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

    /// The projections the adapter changes.
    pub fn targets(&self) -> LoraTargets {
        self.targets
    }

    /// The pair of `target` in `layer`, if the adapter has one.
    pub fn pair(&self, layer: usize, target: LoraTarget) -> Option<&LoraPair> {
        self.layers.get(layer)?[target as usize].as_ref()
    }

    /// Checks the adapter fits `config` (the model a batch runs on may be of another shape).
    pub(crate) fn check(&self, config: &CpuModelConfig) -> Result<()> {
        if self.layers.len() != config.layers {
            return Err(shape(format!(
                "{} layers, model has {}",
                self.layers.len(),
                config.layers
            )));
        }
        let rank = self.rank;
        for (l, pairs) in self.layers.iter().enumerate() {
            for (pair, t) in pairs.iter().zip(LoraTarget::ALL) {
                let Some(pair) = pair else { continue };
                let (input, output) = config.projection_dims(t);
                if pair.a.len() != input * rank || pair.b.len() != rank * output {
                    return Err(shape(format!(
                        "layer {l} {}: A has {} floats, B {}; need {input}×{rank} and {rank}×{output}",
                        t.name(),
                        pair.a.len(),
                        pair.b.len()
                    )));
                }
            }
        }
        Ok(())
    }
}

fn shape(reason: String) -> CpuError {
    CpuError::LoraShape { reason }
}
