//! A PEFT [`Adapter`] as the CPU model multiplies it: PEFT stores `lora_A` as `rank × in` and
//! `lora_B` as `out × rank`; the forward pass wants `in × rank` and `rank × out`.

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::lora::{CpuLora, LayerPairs, LoraPair};
use crate::model::LoraTarget;
use crate::peft::Adapter;

impl CpuLora {
    /// Converts a PEFT adapter of this model's shapes, on whichever of the seven projections
    /// (`q_proj` … `down_proj`) it targets; a projection it leaves out is not adapted.
    pub fn from_adapter(config: &CpuModelConfig, adapter: &Adapter) -> Result<CpuLora> {
        let shape_err = |reason: String| CpuError::LoraShape { reason };
        if adapter.layer_count() != config.layers {
            return Err(shape_err(format!(
                "{} layers, model has {}",
                adapter.layer_count(),
                config.layers
            )));
        }
        let rank = adapter.rank() as usize;
        let mut layers = Vec::with_capacity(config.layers);
        for layer in 0..config.layers {
            let pair_of = |t: LoraTarget| -> Result<Option<LoraPair>> {
                let Some(p) = adapter.pair(layer, t) else {
                    return Ok(None);
                };
                let (input, output) = config.projection_dims(t);
                if p.input() != input || p.output() != output {
                    return Err(shape_err(format!(
                        "layer {layer} {}: {}→{}, model has {input}→{output}",
                        t.name(),
                        p.input(),
                        p.output()
                    )));
                }
                Ok(Some(LoraPair {
                    a: transpose(p.a(), rank, input),
                    b: transpose(p.b(), output, rank),
                }))
            };
            let mut pairs: LayerPairs = Default::default();
            for (slot, t) in pairs.iter_mut().zip(LoraTarget::ALL) {
                *slot = pair_of(t)?;
            }
            layers.push(pairs);
        }
        CpuLora::from_parts(config, rank, adapter.scaling(), layers)
    }
}

/// `rows × cols` row-major → `cols × rows` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = m[r * cols + c];
        }
    }
    out
}
