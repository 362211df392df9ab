//! Page geometry: how large a page is and how many pages a KV block and an adapter take.
//!
//! By default one page holds exactly one KV block (`block_tokens` tokens across all layers), so
//! a block is one page and adapters are split into pages along their rank (S-LoRA's unified
//! paging). A smaller page size may be configured as long as a block still fills whole pages.

use crate::error::{AllocError, Result};

/// Page size and block size, fixed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageGeometry {
    /// Bytes per page.
    pub page_bytes: u64,
    /// Tokens per KV block.
    pub block_tokens: u32,
    /// Pages per KV block.
    pub pages_per_block: u32,
}

impl PageGeometry {
    /// The geometry for a model whose KV cache takes `kv_bytes_per_token` bytes per token
    /// (all layers, K and V). `page_bytes` defaults to one block.
    pub fn for_model(
        kv_bytes_per_token: u64,
        block_tokens: u32,
        page_bytes: Option<u64>,
    ) -> Result<Self> {
        if kv_bytes_per_token == 0 || block_tokens == 0 {
            return Err(AllocError::Config(
                "kv_bytes_per_token and block_tokens must be positive".into(),
            ));
        }
        let block_bytes = kv_bytes_per_token * u64::from(block_tokens);
        let page_bytes = page_bytes.unwrap_or(block_bytes);
        if page_bytes == 0 || !block_bytes.is_multiple_of(page_bytes) {
            return Err(AllocError::Config(format!(
                "a KV block of {block_bytes} bytes must fill whole pages; page size {page_bytes} does not divide it"
            )));
        }
        Ok(PageGeometry {
            page_bytes,
            block_tokens,
            pages_per_block: u32::try_from(block_bytes / page_bytes)
                .map_err(|_| AllocError::Config("too many pages per block".into()))?,
        })
    }

    /// Bytes of one KV block.
    pub fn block_bytes(&self) -> u64 {
        self.page_bytes * u64::from(self.pages_per_block)
    }

    /// Pages needed for `bytes` bytes (an adapter's weights), rounded up; at least one.
    pub fn pages_for(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(self.page_bytes).max(1)).unwrap_or(u32::MAX)
    }

    /// Pages a tier of `bytes` bytes holds.
    pub fn pages_in(&self, bytes: u64) -> u32 {
        u32::try_from(bytes / self.page_bytes).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_page_is_one_block() {
        // Llama-3-8B: 128 KiB of KV per token; 16-token blocks are 2 MiB.
        let g = PageGeometry::for_model(128 << 10, 16, None).unwrap();
        assert_eq!(g.page_bytes, 2 << 20);
        assert_eq!(g.pages_per_block, 1);
        assert_eq!(g.pages_for(80 << 20), 40);
        assert_eq!(g.pages_for(1), 1);
        assert_eq!(g.pages_in(80 << 30), 40 * 1024);
    }

    #[test]
    fn smaller_pages_must_divide_a_block() {
        let g = PageGeometry::for_model(128 << 10, 16, Some(512 << 10)).unwrap();
        assert_eq!(g.pages_per_block, 4);
        assert!(PageGeometry::for_model(128 << 10, 16, Some(3 << 20)).is_err());
        assert!(PageGeometry::for_model(128 << 10, 16, Some(0)).is_err());
        assert!(PageGeometry::for_model(0, 16, None).is_err());
    }
}
