//! A LoRA adapter in memory: rank, alpha, targets and, per layer and target, the `A` and `B`
//! matrices widened to `f32`.

use super::dtype::WeightDtype;
use super::error::{PeftError, Result};
use crate::model::{LoraTarget, LoraTargets, ModelSpec};

/// Which of a projection's two LoRA matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Matrix {
    /// `A`: `rank × in`, row-major (PEFT's `lora_A.weight`).
    A,
    /// `B`: `out × rank`, row-major (PEFT's `lora_B.weight`).
    B,
}

/// The `A` and `B` matrices of one projection in one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraPair {
    pub(crate) target: LoraTarget,
    pub(crate) input: usize,
    pub(crate) output: usize,
    pub(crate) a: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl LoraPair {
    /// The projection.
    pub fn target(&self) -> LoraTarget {
        self.target
    }
    /// The projection's input width (columns of `A`).
    pub fn input(&self) -> usize {
        self.input
    }
    /// The projection's output width (rows of `B`).
    pub fn output(&self) -> usize {
        self.output
    }
    /// `A`, `rank × input`, row-major.
    pub fn a(&self) -> &[f32] {
        &self.a
    }
    /// `B`, `output × rank`, row-major.
    pub fn b(&self) -> &[f32] {
        &self.b
    }
}

/// The shape and hyper-parameters of an adapter, without its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdapterShape {
    /// LoRA rank `r` (positive).
    pub rank: u32,
    /// `lora_alpha`; the update is scaled by `alpha / rank`.
    pub alpha: f32,
    /// The projections that carry weights (not empty).
    pub targets: LoraTargets,
    /// How the weights are stored on disk and in pages.
    pub dtype: WeightDtype,
}

/// A LoRA adapter for a [`ModelSpec`], held in `f32`. Values are always representable in
/// [`Adapter::dtype`], so writing and paging round-trip exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Adapter {
    pub(crate) shape: AdapterShape,
    pub(crate) base_model: String,
    /// `layers[l][t]`: layer `l`, `t`-th target of `shape.targets` in layer order.
    pub(crate) layers: Vec<Vec<LoraPair>>,
}

impl Adapter {
    /// Builds an adapter of `model`'s shapes whose every weight is `weight(layer, target,
    /// matrix, index)` (index into the row-major matrix), rounded to `shape.dtype`.
    pub fn from_fn(
        model: &ModelSpec,
        shape: AdapterShape,
        mut weight: impl FnMut(u32, LoraTarget, Matrix, usize) -> f32,
    ) -> Result<Adapter> {
        check_shape(&shape)?;
        let rank = shape.rank as usize;
        let mut layers = Vec::with_capacity(model.layers as usize);
        for layer in 0..model.layers {
            let mut pairs = Vec::new();
            for target in shape.targets.iter() {
                let (input, output) = dims(model, target)?;
                let mut fill = |m: Matrix, n: usize| -> Vec<f32> {
                    (0..n)
                        .map(|i| shape.dtype.round(weight(layer, target, m, i)))
                        .collect()
                };
                let a = fill(Matrix::A, rank * input);
                let b = fill(Matrix::B, output * rank);
                pairs.push(LoraPair {
                    target,
                    input,
                    output,
                    a,
                    b,
                });
            }
            layers.push(pairs);
        }
        Ok(Adapter {
            shape,
            base_model: model.name.clone(),
            layers,
        })
    }

    /// Builds an adapter from its matrices (`layers[l][t]` for the `t`-th target in layer
    /// order), checking every length against `model` and `shape`; values are rounded to
    /// `shape.dtype`.
    pub fn from_parts(
        model: &ModelSpec,
        shape: AdapterShape,
        layers: Vec<Vec<(Vec<f32>, Vec<f32>)>>,
    ) -> Result<Adapter> {
        check_shape(&shape)?;
        if layers.len() != model.layers as usize {
            return Err(PeftError::Invalid(format!(
                "{} layers given; model {} has {}",
                layers.len(),
                model.name,
                model.layers
            )));
        }
        let rank = shape.rank as usize;
        let targets: Vec<LoraTarget> = shape.targets.iter().collect();
        let mut out = Vec::with_capacity(layers.len());
        for (l, pairs) in layers.into_iter().enumerate() {
            if pairs.len() != targets.len() {
                return Err(PeftError::Invalid(format!(
                    "layer {l}: {} targets given, {} configured",
                    pairs.len(),
                    targets.len()
                )));
            }
            let mut row = Vec::with_capacity(pairs.len());
            for (&target, (mut a, mut b)) in targets.iter().zip(pairs) {
                let (input, output) = dims(model, target)?;
                if a.len() != rank * input || b.len() != output * rank {
                    return Err(PeftError::Invalid(format!(
                        "layer {l} {}: A has {} and B {} values; expected {} and {}",
                        target.name(),
                        a.len(),
                        b.len(),
                        rank * input,
                        output * rank
                    )));
                }
                for v in a.iter_mut().chain(b.iter_mut()) {
                    *v = shape.dtype.round(*v);
                }
                row.push(LoraPair {
                    target,
                    input,
                    output,
                    a,
                    b,
                });
            }
            out.push(row);
        }
        Ok(Adapter {
            shape,
            base_model: model.name.clone(),
            layers: out,
        })
    }

    /// LoRA rank `r`.
    pub fn rank(&self) -> u32 {
        self.shape.rank
    }
    /// `lora_alpha`.
    pub fn alpha(&self) -> f32 {
        self.shape.alpha
    }
    /// The factor the update `B·A·x` is multiplied by: `alpha / rank`.
    pub fn scaling(&self) -> f32 {
        self.shape.alpha / self.shape.rank as f32
    }
    /// The targeted projections.
    pub fn targets(&self) -> LoraTargets {
        self.shape.targets
    }
    /// The stored dtype.
    pub fn dtype(&self) -> WeightDtype {
        self.shape.dtype
    }
    /// Rank, alpha, targets and dtype.
    pub fn shape(&self) -> AdapterShape {
        self.shape
    }
    /// The base model's name (`base_model_name_or_path`).
    pub fn base_model(&self) -> &str {
        &self.base_model
    }
    /// Number of decoder layers.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }
    /// The matrices of `target` in `layer`, if the adapter has them.
    pub fn pair(&self, layer: usize, target: LoraTarget) -> Option<&LoraPair> {
        self.layers.get(layer)?.iter().find(|p| p.target == target)
    }
    /// All pairs of a layer, in target order.
    pub fn layer(&self, layer: usize) -> &[LoraPair] {
        self.layers.get(layer).map_or(&[], Vec::as_slice)
    }
    /// Elements of one rank slice: `Σ_layers Σ_targets (in + out)`.
    pub fn slice_elements(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|p| p.input + p.output)
            .sum()
    }
    /// Bytes of the adapter's weights in its dtype: `rank × slice_elements × dtype bytes`,
    /// which equals [`ModelSpec::lora_bytes`] for a spec whose `dtype_bytes` is this dtype's.
    pub fn bytes(&self) -> u64 {
        u64::from(self.shape.rank) * self.slice_elements() as u64 * self.shape.dtype.bytes() as u64
    }
}

fn check_shape(shape: &AdapterShape) -> Result<()> {
    if shape.rank == 0 {
        return Err(PeftError::Invalid("rank must be positive".into()));
    }
    if shape.targets.is_empty() {
        return Err(PeftError::Invalid("no target projections".into()));
    }
    if !shape.alpha.is_finite() {
        return Err(PeftError::Invalid(format!(
            "alpha {} is not finite",
            shape.alpha
        )));
    }
    Ok(())
}

/// `(input, output)` of a projection as `usize`.
pub(crate) fn dims(model: &ModelSpec, target: LoraTarget) -> Result<(usize, usize)> {
    let (input, output) = model.projection_dims(target);
    let conv = |v: u64| {
        usize::try_from(v)
            .map_err(|_| PeftError::Invalid(format!("{} width {v} too large", target.name())))
    };
    Ok((conv(input)?, conv(output)?))
}
