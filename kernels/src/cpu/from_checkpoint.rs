//! A [`CpuModel`] over a real checkpoint's tensors: Hugging Face names, PyTorch's `out × in`
//! layout, shared with the [`Checkpoint`] (a memory-mapped f32 tensor is never copied).

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::weights::{CpuModel, LayerWeights, Matrix};
use crate::checkpoint::names::{EMBED, LM_HEAD, LayerTensor, NORM};
use crate::checkpoint::{Checkpoint, LlamaConfig};

impl From<&LlamaConfig> for CpuModelConfig {
    fn from(c: &LlamaConfig) -> Self {
        CpuModelConfig {
            layers: c.layers,
            hidden: c.hidden,
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
            ffn: c.ffn,
            vocab: c.vocab,
            rope_theta: c.rope_theta,
            rms_eps: c.rms_eps,
            context_len: c.context_len,
            tied_embeddings: c.tied_embeddings,
            name: c.name.clone(),
        }
    }
}

impl CpuModel {
    /// The model of `checkpoint`: its shape from the checkpoint's config, its weights the
    /// checkpoint's tensors (shared, not copied; only the RMSNorm vectors are copied). Every
    /// tensor is checked against the shape the config implies before anything is kept.
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Result<CpuModel> {
        let config = CpuModelConfig::from(&checkpoint.config);
        config.validate()?;
        let c = &config;
        let take = |name: &str, rows: usize, cols: usize| -> Result<Matrix> {
            let t = checkpoint.tensor(name).map_err(|e| CpuError::Checkpoint {
                reason: e.to_string(),
            })?;
            if t.rows != rows || t.cols != cols || t.data.len() != rows * cols {
                return Err(CpuError::Checkpoint {
                    reason: format!(
                        "{}: tensor {name} is {}×{} ({} values), the model needs {rows}×{cols}",
                        checkpoint.path.display(),
                        t.rows,
                        t.cols,
                        t.data.len()
                    ),
                });
            }
            Ok(Matrix {
                rows,
                cols,
                data: t.data,
            })
        };
        let vector =
            |name: &str| -> Result<Vec<f32>> { Ok(take(name, 1, c.hidden)?.as_slice().to_vec()) };
        let embed = take(EMBED, c.vocab, c.hidden)?;
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let m = |t: LayerTensor| {
                let (rows, cols) = t.shape(&checkpoint.config);
                take(&t.name(l), rows, cols)
            };
            layers.push(LayerWeights {
                attn_norm: vector(&LayerTensor::InputNorm.name(l))?,
                attn: [
                    m(LayerTensor::Q)?,
                    m(LayerTensor::K)?,
                    m(LayerTensor::V)?,
                    m(LayerTensor::O)?,
                ],
                ffn_norm: vector(&LayerTensor::PostNorm.name(l))?,
                gate: m(LayerTensor::Gate)?,
                up: m(LayerTensor::Up)?,
                down: m(LayerTensor::Down)?,
            });
        }
        let lm_head = if c.tied_embeddings {
            embed.clone()
        } else {
            take(LM_HEAD, c.vocab, c.hidden)?
        };
        Ok(CpuModel {
            final_norm: vector(NORM)?,
            embed,
            layers,
            lm_head,
            config,
        })
    }
}
