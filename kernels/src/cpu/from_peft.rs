//! A PEFT [`Adapter`] as the CPU model multiplies it: PEFT stores `lora_A` as `rank × in` and
//! `lora_B` as `out × rank`; the forward pass wants `in × rank` and `rank × out`.

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::lora::{CpuLora, LoraPair};
use crate::model::LoraTarget;
use crate::peft::Adapter;

const ATTENTION: [LoraTarget; 4] = [LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O];

impl CpuLora {
    /// Converts a PEFT adapter of this model's shapes. The CPU model adapts q, k, v and o; a
    /// projection the adapter leaves out gets zero factors, and an adapter on an MLP
    /// projection is refused (the CPU model has no LoRA there).
    pub fn from_adapter(config: &CpuModelConfig, adapter: &Adapter) -> Result<CpuLora> {
        let shape_err = |reason: String| CpuError::LoraShape { reason };
        let targets = adapter.targets();
        if let Some(t) = targets.iter().find(|t| !ATTENTION.contains(t)) {
            return Err(shape_err(format!(
                "the CPU model adapts q, k, v and o only; the adapter targets {}",
                t.name()
            )));
        }
        if adapter.layer_count() != config.layers {
            return Err(shape_err(format!(
                "{} layers, model has {}",
                adapter.layer_count(),
                config.layers
            )));
        }
        let rank = adapter.rank() as usize;
        let dims = config.attention_dims();
        let mut layers = Vec::with_capacity(config.layers);
        for layer in 0..config.layers {
            let pair_of = |t: usize| -> Result<LoraPair> {
                let (input, output) = dims[t];
                let Some(p) = adapter.pair(layer, ATTENTION[t]) else {
                    return Ok(LoraPair {
                        a: vec![0.0; input * rank],
                        b: vec![0.0; rank * output],
                    });
                };
                if p.input() != input || p.output() != output {
                    return Err(shape_err(format!(
                        "layer {layer} {}: {}→{}, model has {input}→{output}",
                        ATTENTION[t].name(),
                        p.input(),
                        p.output()
                    )));
                }
                Ok(LoraPair {
                    a: transpose(p.a(), rank, input),
                    b: transpose(p.b(), output, rank),
                })
            };
            layers.push([pair_of(0)?, pair_of(1)?, pair_of(2)?, pair_of(3)?]);
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
