//! Checks of a batch before a pass touches any page.

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};
use super::forward::SeqInput;
use super::kv::KvArena;

/// Checks every sequence of `seqs` against the model and the arena: tokens in the vocabulary,
/// a block table covering `start_pos + tokens` positions with pages inside the arena, an
/// adapter of the model's shape, and no page both written by one block and used by another.
pub(crate) fn check_batch(
    config: &CpuModelConfig,
    arena: &KvArena,
    seqs: &[SeqInput<'_>],
) -> Result<()> {
    let bt = arena.block_tokens();
    // (page, sequence, whether this block is written by the pass)
    let mut uses: Vec<(u32, usize, bool)> = Vec::new();
    for (seq, s) in seqs.iter().enumerate() {
        if s.tokens.is_empty() {
            return Err(CpuError::EmptyInput { seq });
        }
        if let Some(&token) = s.tokens.iter().find(|&&t| t as usize >= config.vocab) {
            return Err(CpuError::TokenOutOfRange {
                seq,
                token,
                vocab: config.vocab,
            });
        }
        if let Some(lora) = s.lora {
            lora.check(config)?;
        }
        let positions = s
            .start_pos
            .checked_add(s.tokens.len())
            .ok_or(CpuError::Config {
                reason: format!("sequence {seq}: start_pos overflows"),
            })?;
        let needed = positions.div_ceil(bt);
        let table = s
            .block_table
            .get(..needed)
            .ok_or(CpuError::BlockTableTooShort {
                seq,
                positions,
                needed,
                got: s.block_table.len(),
            })?;
        let first_written = s.start_pos / bt;
        for (block, &page) in table.iter().enumerate() {
            if page as usize >= arena.pages() {
                return Err(CpuError::PageOutOfRange {
                    seq,
                    page,
                    pages: arena.pages(),
                });
            }
            uses.push((page, seq, block >= first_written));
        }
    }
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
