//! One sequence's KV cache on the CPU model: feed tokens, get the last position's logits.

use crate::cpu::{CpuLora, CpuModel, FRESH_BLOCK_TOKENS, KvArena, Result, SeqInput};

/// A single sequence decoding on its own arena, sized once for `capacity` positions.
pub struct Sequence<'m> {
    model: &'m CpuModel,
    lora: Option<&'m CpuLora>,
    arena: KvArena,
    table: Vec<u32>,
    len: usize,
}

impl<'m> Sequence<'m> {
    /// An empty sequence with room for `capacity` positions (at most the model's context;
    /// a larger capacity is refused by the first pass that needs it).
    pub fn new(model: &'m CpuModel, lora: Option<&'m CpuLora>, capacity: usize) -> Result<Self> {
        let pages = capacity.div_ceil(FRESH_BLOCK_TOKENS).max(1);
        Ok(Sequence {
            model,
            lora,
            arena: KvArena::for_model(model.config(), FRESH_BLOCK_TOKENS, pages)?,
            table: (0..pages as u32).collect(),
            len: 0,
        })
    }

    /// Positions computed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Computes `tokens` at the next positions (one pass) and returns the last one's logits.
    /// An error (a token outside the vocabulary, no room left) changes nothing.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let logits =
            self.model
                .prefill(&mut self.arena, tokens, &self.table, self.len, self.lora)?;
        self.len += tokens.len();
        Ok(logits)
    }

    /// Like [`Sequence::feed`], but returns the logits of every new position
    /// (`tokens.len() × vocab`, row-major).
    pub fn feed_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let seq = SeqInput {
            tokens,
            block_table: &self.table,
            start_pos: self.len,
            lora: self.lora,
        };
        let logits = self
            .model
            .forward_batch_all(&mut self.arena, &[seq])?
            .swap_remove(0);
        self.len += tokens.len();
        Ok(logits)
    }
}
