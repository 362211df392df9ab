//! The memory plan of a simulated GPU: page geometry, pages per tier, adapter sizes, and the
//! cost hints the engine's decisions use — all derived from the hardware model.
//!
//! - Page = one KV block of [`BLOCK_TOKENS`] tokens across all layers (per GPU under tensor
//!   parallelism): 2 MiB for Llama-3-8B.
//! - HBM for the pools = `0.9 × HBM − weights − activation reserve` (vLLM's default
//!   `gpu_memory_utilization` is 0.9; the reserve is [`ACTIVATION_RESERVE_BYTES`], an
//!   assumption for a 4,096-token prefill chunk).
//! - Host tier = the GPU preset's pinned host memory; NVMe tier = its NVMe spill space.
//! - An adapter takes `ceil(rank × lora_bytes_per_rank_per_gpu / page)` pages.

use fastlibra_alloc::PageGeometry;
use fastlibra_kernels::{CostModel, HardwareConfig, Link};

use super::api::SimError;
use crate::engine::{AdapterInfo, CostHints};
use crate::workload::AdapterSpec;

/// Tokens per KV block (vLLM's default block size).
pub const BLOCK_TOKENS: u32 = 16;
/// The fewest HBM pages a simulated GPU must have for its KV and adapters.
pub const MIN_HBM_PAGES: u32 = 64;
/// HBM set aside for activations and the CUDA context (assumption).
pub const ACTIVATION_RESERVE_BYTES: u64 = 2 << 30;

/// Pages and sizes for one simulated GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// Page geometry.
    pub geometry: PageGeometry,
    /// Pages per tier: HBM, host, NVMe.
    pub pages: [u32; 3],
    /// Per adapter: rank and pages.
    pub adapters: Vec<AdapterInfo>,
    /// Cost hints for the engine.
    pub costs: CostHints,
}

impl MemoryPlan {
    /// The plan for `adapters` on `hardware`.
    pub fn new(
        hardware: &HardwareConfig,
        adapters: &[AdapterSpec],
    ) -> Result<MemoryPlan, SimError> {
        let model = &hardware.model;
        let gpu = &hardware.gpu;
        let geometry =
            PageGeometry::for_model(model.kv_bytes_per_token_per_gpu(), BLOCK_TOKENS, None)?;
        let usable = (gpu.hbm_bytes as f64 * 0.9) as u64;
        let reserved = model.weight_bytes_per_gpu() + ACTIVATION_RESERVE_BYTES;
        let hbm_pages = geometry.pages_in(usable.saturating_sub(reserved));
        if hbm_pages < MIN_HBM_PAGES {
            return Err(SimError::Capacity(format!(
                "{} on {} leaves {hbm_pages} KV pages of {} bytes in HBM; at least \
                 {MIN_HBM_PAGES} are needed",
                model.name, gpu.name, geometry.page_bytes
            )));
        }
        let per_rank = model.lora_bytes_per_rank_per_gpu(hardware.cost.lora_targets);
        let adapters = adapters
            .iter()
            .map(|a| AdapterInfo {
                rank: a.rank,
                pages: geometry.pages_for(per_rank * u64::from(a.rank)),
            })
            .collect::<Vec<_>>();
        let cost = hardware.cost_model()?;
        Ok(MemoryPlan {
            pages: [
                hbm_pages,
                geometry.pages_in(gpu.host_memory_bytes),
                geometry.pages_in(gpu.nvme_bytes),
            ],
            costs: hints(&cost, geometry.page_bytes),
            geometry,
            adapters,
        })
    }
}

/// Per-page transfer times and the marginal prefill time per token, from the cost model.
pub fn hints(cost: &CostModel, page_bytes: u64) -> CostHints {
    // Marginal cost of 1,024 more prefill tokens after a 1,024-token context: what recomputing
    // history costs when it rides along with other work.
    let marginal = cost
        .prefill_ns(2048, 1024)
        .saturating_sub(cost.prefill_ns(1024, 1024));
    CostHints {
        h2d_ns_per_page: cost.transfer_ns(Link::H2D, page_bytes) as f64,
        d2h_ns_per_page: cost.transfer_ns(Link::D2H, page_bytes) as f64,
        nvme_read_ns_per_page: cost.transfer_ns(Link::NvmeRead, page_bytes) as f64,
        recompute_ns_per_token: marginal as f64 / 1024.0,
    }
}
