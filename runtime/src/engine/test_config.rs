//! The small engine the unit tests drive.

use super::fuzz::SMALL_COSTS;
use super::{AdapterInfo, EngineConfig, PolicyKind};

/// Tokens per KV block.
pub(super) const BLOCK: u32 = 4;

/// `policy` over `pages` per tier (HBM, host, NVMe) with one rank-8 adapter of 2 pages, blocks
/// of [`BLOCK`] tokens, and invariants checked after every input.
pub(super) fn checked_config(policy: PolicyKind, pages: [u32; 3]) -> EngineConfig {
    let adapters = vec![AdapterInfo { rank: 8, pages: 2 }];
    let mut config = EngineConfig::new(policy, pages, BLOCK, 1, 1 << 20, adapters, SMALL_COSTS);
    config.check_invariants = true;
    config
}
