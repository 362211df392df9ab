//! Checks of a batch before a pass touches any page.

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::forward::SeqInput;
use super::kv::KvArena;

/// Checks every sequence of `seqs` against the model and the arena: tokens in the vocabulary,
/// positions within the context length, a block table covering `start_pos + tokens` positions with pages inside the arena, an
/// adapter of the model's shape, and no page both written by one block and used by another.
pub(crate) fn check_batch(
    config: &CpuModelConfig,
    arena: &KvArena,
    seqs: &[SeqInput<'_>],
) -> Result<()> {
    let mut uses = Vec::new();
    for (seq, s) in seqs.iter().enumerate() {
        if let Some(lora) = s.lora {
            lora.check(config)?;
        }
        let pages = SeqPages {
            seq,
            tokens: s.tokens,
            start_pos: s.start_pos,
            block_table: s.block_table,
        };
        pages.check(config, arena.block_tokens(), arena.pages(), &mut uses)?;
    }
    check_conflicts(uses)
}

/// One sequence of a batch as the checks see it (the CPU and CUDA backends share them).
pub(crate) struct SeqPages<'a> {
    /// Its index in the batch.
    pub seq: usize,
    /// New token ids.
    pub tokens: &'a [u32],
    /// Positions already cached.
    pub start_pos: usize,
    /// Pages of its blocks.
    pub block_table: &'a [u32],
}

impl<'a> SeqPages<'a> {
    /// Tokens in the vocabulary, a block table covering `start_pos + tokens` positions with
    /// pages below `pages`; returns the blocks the pass touches and appends `(page, sequence,
    /// whether the pass writes it)` to `uses` for [`check_conflicts`].
    pub(crate) fn check(
        &self,
        config: &CpuModelConfig,
        block_tokens: usize,
        pages: usize,
        uses: &mut Vec<(u32, usize, bool)>,
    ) -> Result<&'a [u32]> {
        let seq = self.seq;
        if self.tokens.is_empty() {
            return Err(CpuError::EmptyInput { seq });
        }
        if let Some(&token) = self.tokens.iter().find(|&&t| t as usize >= config.vocab) {
            return Err(CpuError::TokenOutOfRange {
                seq,
                token,
                vocab: config.vocab,
            });
        }
        let positions = self
            .start_pos
            .checked_add(self.tokens.len())
            .ok_or(CpuError::Config {
                reason: format!("sequence {seq}: start_pos overflows"),
            })?;
        if positions > config.context_len {
            return Err(CpuError::ContextTooLong {
                seq,
                positions,
                context_len: config.context_len,
            });
        }
        let needed = positions.div_ceil(block_tokens);
        let table = self
            .block_table
            .get(..needed)
            .ok_or(CpuError::BlockTableTooShort {
                seq,
                positions,
                needed,
                got: self.block_table.len(),
            })?;
        let first_written = self.start_pos / block_tokens;
        for (block, &page) in table.iter().enumerate() {
            if page as usize >= pages {
                return Err(CpuError::PageOutOfRange { seq, page, pages });
            }
            uses.push((page, seq, block >= first_written));
        }
        Ok(table)
    }
}

/// No page written by the pass may be used by any other block of the batch (`uses` as
/// [`SeqPages::check`] collects them).
pub(crate) fn check_conflicts(mut uses: Vec<(u32, usize, bool)>) -> Result<()> {
    uses.sort_unstable();
    for pair in uses.windows(2) {
        let ((page, a, a_writes), (next, b, b_writes)) = (pair[0], pair[1]);
        // Within one sequence a page twice aliases two blocks; across sequences a shared page
        // is a shared prefix, fine as long as nobody writes it.
        if page == next && (a == b || a_writes || b_writes) {
            let (writer, other) = if b_writes { (b, a) } else { (a, b) };
            return Err(CpuError::PageConflict {
                page,
                writer,
                other,
            });
        }
    }
    Ok(())
}
