//! The engine's configuration: sizes, batching limits, swapper settings and the cost hints its
//! decisions use. Everything is a number given at construction; the engine reads no clock and
//! no device.

use super::policy::{PolicyKind, PolicyKnobs};

/// One adapter the engine serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterInfo {
    /// LoRA rank (for compute cost).
    pub rank: u32,
    /// Pages its weights take.
    pub pages: u32,
}

/// What moving or recomputing things costs, for the swapper's decisions. These are estimates
/// the driver derives from its device model (the simulator) or from measurements (runtimes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostHints {
    /// Host → HBM time per page, ns.
    pub h2d_ns_per_page: f64,
    /// HBM → host time per page, ns.
    pub d2h_ns_per_page: f64,
    /// NVMe → host time per page, ns.
    pub nvme_read_ns_per_page: f64,
    /// Prefill time per token when recomputing history, ns.
    pub recompute_ns_per_token: f64,
}

/// Memory-use thresholds of the proactive swapper, as fractions of HBM pages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watermarks {
    /// Above this, swap out...
    pub high: f64,
    /// ...down to this.
    pub low: f64,
    /// Below this HBM counts as idle: prefetch up to it.
    pub prefetch: f64,
}

impl Default for Watermarks {
    /// The FASTLIBRA paper's settings: swap out above about 80 % down to about 70 %, prefetch
    /// below about 60 %.
    fn default() -> Self {
        Watermarks {
            high: 0.8,
            low: 0.7,
            prefetch: 0.6,
        }
    }
}

/// Everything the engine needs at construction.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// The policy.
    pub policy: PolicyKind,
    /// Its knobs (normally `policy.knobs(…)`).
    pub knobs: PolicyKnobs,
    /// Pages per tier: HBM, host, NVMe.
    pub pages: [u32; 3],
    /// Tokens per KV block.
    pub block_tokens: u32,
    /// Pages per KV block.
    pub pages_per_block: u32,
    /// Bytes per page (for byte counters).
    pub page_bytes: u64,
    /// The adapters, indexed by the ids requests use.
    pub adapters: Vec<AdapterInfo>,
    /// Most sequences in one step.
    pub max_batch: u32,
    /// Most prefill tokens in one step (chunked prefill splits longer prompts).
    pub prefill_token_budget: u32,
    /// Most requests waiting for admission; more are rejected (admission control).
    pub max_waiting: u32,
    /// Swapper period, ns (FASTLIBRA: 100 ms).
    pub tick_ns: u64,
    /// Swapper thresholds.
    pub watermarks: Watermarks,
    /// Time constant of the recency factor `exp(-(now - t_last) / tau)`, ns.
    pub recency_tau_ns: u64,
    /// Half-life of the visit frequency, ns.
    pub visit_half_life_ns: u64,
    /// Most of HBM that requests not yet running may hold pinned (their LoRA and history),
    /// so that waiting requests cannot starve running ones.
    pub staging_fraction: f64,
    /// Commands handed to the driver per link at a time (queue depth); the rest wait in the
    /// engine, where on-demand loads overtake prefetches.
    pub link_queue_depth: u32,
    /// Most pages one transfer command carries when the engine batches a path's missing KV
    /// blocks (or demotions to NVMe) into it: a bound on how long one batched copy holds its
    /// link ahead of a later on-demand load. A single node larger than this still moves,
    /// alone; 1 batches nothing (one block per command, as before batching).
    pub transfer_pages_max: u32,
    /// With `PolicyKnobs::fresh_first`: how long a request waits before it is overdue and no
    /// fresh request may overtake it any more, ns (the bound on the wait overtaking adds).
    pub overdue_after_ns: u64,
    /// With `PolicyKnobs::fresh_first`: fresh requests go first only while the line is backed
    /// up, that is while its oldest request has waited at least this long, ns; a line that
    /// drains sooner is served in arrival order.
    pub backlog_after_ns: u64,
    /// Cost estimates.
    pub costs: CostHints,
    /// For the static-split policies (`vllm`, `vllm-async`): most adapters cached in host
    /// memory and HBM together, vLLM's `max_cpu_loras` (the rest wait on disk, the NVMe
    /// tier, and are read back on demand). `None`: as many as the host tier holds.
    pub max_cpu_loras: Option<u32>,
    /// Run `check_invariants()` after every input (tests and debugging; slow).
    pub check_invariants: bool,
    /// Queue every clean move of an adapter (a tier change without a copy, since its weights
    /// also exist below) for [`Engine::poll_clean_move`](super::Engine::poll_clean_move): a
    /// runtime with real bytes must write the adapter into its new pages from its source.
    pub report_clean_moves: bool,
}

impl EngineConfig {
    /// A configuration with the defaults for everything but the sizes.
    pub fn new(
        policy: PolicyKind,
        pages: [u32; 3],
        block_tokens: u32,
        pages_per_block: u32,
        page_bytes: u64,
        adapters: Vec<AdapterInfo>,
        costs: CostHints,
    ) -> Self {
        EngineConfig {
            policy,
            knobs: policy.knobs(None),
            pages,
            block_tokens,
            pages_per_block,
            page_bytes,
            adapters,
            max_batch: 256,
            prefill_token_budget: 4096,
            max_waiting: 100_000,
            tick_ns: 100_000_000,
            watermarks: Watermarks::default(),
            recency_tau_ns: 30_000_000_000,
            visit_half_life_ns: 10_000_000_000,
            link_queue_depth: 4,
            staging_fraction: 0.1,
            transfer_pages_max: 32,
            overdue_after_ns: 40_000_000_000,
            backlog_after_ns: 1_000_000_000,
            costs,
            max_cpu_loras: None,
            check_invariants: false,
            report_clean_moves: false,
        }
    }
}
