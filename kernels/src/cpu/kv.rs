//! The paged KV cache: one buffer of fixed-size pages, each holding one KV block.

use super::config::CpuModelConfig;
use super::error::{CpuError, Result};

/// Fixed-size pages of KV, allocated once. A page holds one block of `block_tokens` tokens
/// across all layers, K and V, laid out `[layer][K|V][slot][kv_head][head_dim]` (see the
/// module doc); a sequence's KV is the list of its pages (its block table).
#[derive(Clone, Debug)]
pub struct KvArena {
    block_tokens: usize,
    page_floats: usize,
    data: Vec<f32>,
}

impl KvArena {
    /// An arena of `pages` pages of `page_floats` floats each, for blocks of `block_tokens`
    /// tokens. A model checks that the page size matches its blocks before every pass.
    pub fn new(pages: usize, page_floats: usize, block_tokens: usize) -> Result<Self> {
        if pages == 0 || page_floats == 0 || block_tokens == 0 {
            return Err(CpuError::Config {
                reason: "an arena needs positive pages, page_floats and block_tokens".into(),
            });
        }
        let floats = pages.checked_mul(page_floats).ok_or(CpuError::Config {
            reason: "arena size overflows".into(),
        })?;
        Ok(KvArena {
            block_tokens,
            page_floats,
            data: vec![0.0; floats],
        })
    }

    /// An arena of `pages` pages sized for `config`'s blocks of `block_tokens` tokens
    /// (`page_floats = block_tokens × config.kv_floats_per_token()`; in bytes, the page of
    /// `PageGeometry::for_model(config.kv_bytes_per_token(), block_tokens, None)`).
    pub fn for_model(config: &CpuModelConfig, block_tokens: usize, pages: usize) -> Result<Self> {
        KvArena::new(pages, config.page_floats(block_tokens), block_tokens)
    }

    /// Pages in the arena.
    pub fn pages(&self) -> usize {
        self.data.len() / self.page_floats
    }

    /// Floats per page.
    pub fn page_floats(&self) -> usize {
        self.page_floats
    }

    /// Tokens per block (one block per page).
    pub fn block_tokens(&self) -> usize {
        self.block_tokens
    }

    /// The floats of page `page` (for copies between tiers and for tests); `None` outside the
    /// arena.
    pub fn page(&self, page: u32) -> Option<&[f32]> {
        let start = (page as usize).checked_mul(self.page_floats)?;
        self.data.get(start..start + self.page_floats)
    }

    /// The floats of page `page`, writable (to restore a page copied from another tier).
    pub fn page_mut(&mut self, page: u32) -> Option<&mut [f32]> {
        let start = (page as usize).checked_mul(self.page_floats)?;
        self.data.get_mut(start..start + self.page_floats)
    }

    pub(crate) fn data(&self) -> &[f32] {
        &self.data
    }

    pub(crate) fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

/// Where a token's K and V of one layer lie in the arena, for one model and block size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KvLayout {
    pub block_tokens: usize,
    pub page_floats: usize,
    pub kv_dim: usize,
}

impl KvLayout {
    pub fn new(config: &CpuModelConfig, arena: &KvArena) -> Result<Self> {
        let expected = config.page_floats(arena.block_tokens());
        if arena.page_floats() != expected {
            return Err(CpuError::PageSize {
                expected,
                got: arena.page_floats(),
            });
        }
        Ok(KvLayout {
            block_tokens: arena.block_tokens(),
            page_floats: arena.page_floats(),
            kv_dim: config.kv_dim(),
        })
    }

    /// Offset in the arena of position `pos`'s K (`which = 0`) or V (`which = 1`) in `layer`,
    /// given the sequence's block table (already checked to cover `pos`).
    pub fn offset(&self, table: &[u32], layer: usize, which: usize, pos: usize) -> usize {
        let page = table[pos / self.block_tokens] as usize;
        let slot = pos % self.block_tokens;
        page * self.page_floats + ((layer * 2 + which) * self.block_tokens + slot) * self.kv_dim
    }
}
