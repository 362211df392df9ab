//! A [`CpuLora`] as an f32 stream in the paged, slice-major layout of
//! [`crate::peft`] (targets q, k, v, o): what the LoRA kernels read from pool pages.

use crate::cpu::{CpuLora, CpuModelConfig};
use crate::model::LoraTarget;

const ATTENTION: [LoraTarget; 4] = [LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O];

/// Offsets inside one rank slice of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoraStreamLayout {
    /// Rank of the adapter.
    pub rank: usize,
    /// Floats of one rank slice: `layers × Σ_t (in_t + out_t)`.
    pub slice_floats: usize,
    /// `(input, output)` widths of q, k, v, o.
    dims: [(usize, usize); 4],
}

impl LoraStreamLayout {
    /// The layout of a rank-`rank` adapter on q, k, v, o of `config`.
    pub fn new(config: &CpuModelConfig, rank: usize) -> Self {
        let dims = config.attention_dims();
        let per_layer: usize = dims.iter().map(|(i, o)| i + o).sum();
        LoraStreamLayout {
            rank,
            slice_floats: config.layers * per_layer,
            dims,
        }
    }

    /// Offset inside a slice of `A[j, 0]` of (`layer`, `target`), target 0..4 = q, k, v, o;
    /// `B[0, j]` follows at `+ input`.
    pub fn a_offset(&self, layer: usize, target: usize) -> usize {
        let per_layer: usize = self.dims.iter().map(|(i, o)| i + o).sum();
        layer * per_layer
            + self.dims[..target]
                .iter()
                .map(|(i, o)| i + o)
                .sum::<usize>()
    }

    /// Offset inside a slice of `B[0, j]` of (`layer`, `target`).
    pub fn b_offset(&self, layer: usize, target: usize) -> usize {
        self.a_offset(layer, target) + self.dims[target].0
    }

    /// Floats of the whole stream (`rank × slice_floats`).
    pub fn total_floats(&self) -> usize {
        self.rank * self.slice_floats
    }

    /// Pages of `page_floats` the stream takes (at least one).
    pub fn pages(&self, page_floats: usize) -> usize {
        self.total_floats().div_ceil(page_floats.max(1)).max(1)
    }
}

/// The adapter's stream, zero-padded to whole pages of `page_floats`.
pub fn lora_stream(
    config: &CpuModelConfig,
    lora: &CpuLora,
    page_floats: usize,
) -> (LoraStreamLayout, Vec<f32>) {
    let layout = LoraStreamLayout::new(config, lora.rank());
    let rank = lora.rank();
    let mut stream = Vec::with_capacity(layout.pages(page_floats) * page_floats);
    for j in 0..rank {
        for layer in 0..config.layers {
            for (t, (input, output)) in ATTENTION.into_iter().zip(config.attention_dims()) {
                // `a` is input × rank: A[j, i] = a[i·rank + j]; `b` is rank × output. A
                // projection the adapter leaves out is zeros.
                match lora.pair(layer, t) {
                    Some(pair) => {
                        stream.extend((0..input).map(|i| pair.a[i * rank + j]));
                        stream.extend_from_slice(&pair.b[j * output..(j + 1) * output]);
                    }
                    None => stream.resize(stream.len() + input + output, 0.0),
                }
            }
        }
    }
    stream.resize(layout.pages(page_floats) * page_floats, 0.0);
    (layout, stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_find_every_factor_value_in_the_stream() {
        let config = CpuModelConfig {
            layers: 2,
            hidden: 64,
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            ffn: 96,
            vocab: 50,
            ..CpuModelConfig::default()
        };
        let lora = CpuLora::random(&config, 3, 0.5, 7).unwrap();
        let page_floats = 500;
        let (layout, stream) = lora_stream(&config, &lora, page_floats);
        assert_eq!(stream.len() % page_floats, 0);
        assert!(stream.len() >= layout.total_floats());
        for layer in 0..config.layers {
            for (t, (input, output)) in config.attention_dims().into_iter().enumerate() {
                let pair = lora.pair(layer, ATTENTION[t]).unwrap();
                for j in 0..3 {
                    let a = j * layout.slice_floats + layout.a_offset(layer, t);
                    let b = j * layout.slice_floats + layout.b_offset(layer, t);
                    for i in 0..input {
                        assert_eq!(stream[a + i], pair.a[i * 3 + j]);
                    }
                    for o in 0..output {
                        assert_eq!(stream[b + o], pair.b[j * output + o]);
                    }
                }
            }
        }
    }
}
