//! Whole-sequence runs from an empty cache: what a comparison with another implementation
//! (llama.cpp's logits) or a recompute from scratch needs.

use super::error::{CpuError, Result};
use super::forward::SeqInput;
use super::kv::KvArena;
use super::lora::CpuLora;
use super::weights::CpuModel;

/// Tokens per page of the arenas [`CpuModel::logits_for`] makes (the engine's block size).
pub const FRESH_BLOCK_TOKENS: usize = 16;

impl CpuModel {
    /// The logits of every position of `tokens` (`tokens.len() × vocab`, row-major), computed
    /// from a fresh arena of its own with `lora` (or the base model).
    pub fn logits_for(&self, tokens: &[u32], lora: Option<&CpuLora>) -> Result<Vec<f32>> {
        if tokens.len() > self.config.context_len {
            return Err(CpuError::ContextTooLong {
                seq: 0,
                positions: tokens.len(),
                context_len: self.config.context_len,
            });
        }
        let pages = tokens.len().div_ceil(FRESH_BLOCK_TOKENS).max(1);
        let mut arena = KvArena::for_model(&self.config, FRESH_BLOCK_TOKENS, pages)?;
        let table: Vec<u32> = (0..pages as u32).collect();
        let seq = SeqInput {
            tokens,
            block_table: &table,
            start_pos: 0,
            lora,
        };
        Ok(self.forward_batch_all(&mut arena, &[seq])?.swap_remove(0))
    }
}
