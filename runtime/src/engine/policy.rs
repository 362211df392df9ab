//! The cache policies, each a point in a small matrix of knobs the one engine reads.
//!
//! | policy          | dependency | KV kept after a request | evicted KV goes | LoRA/KV split | ranking | proactive swapper |
//! |-----------------|-----------|-------------------------|-----------------|---------------|---------|-------------------|
//! | `fastlibra`     | enforced  | yes                     | host, then NVMe | unified       | cost model | yes (watermarks, prefetch) |
//! | `fastlibra-wom` | not kept  | yes                     | host, then NVMe | unified       | cost model | yes |
//! | `fastlibra-wos` | enforced  | yes                     | host, then NVMe | unified       | LRU     | yes |
//! | `vllm`          | not kept  | yes (prefix caching)    | dropped         | static (0.2)  | LRU     | no (on demand, synchronous) |
//! | `vllm-async`    | not kept  | yes (prefix caching)    | dropped         | static (0.2)  | LRU     | no (on demand, overlapped) |
//! | `slora`         | n/a       | no                      | n/a             | unified       | LRU     | no (on demand) |
//!
//! The fastlibra policies also serve the waiting line fresh first (a request that has waited
//! `EngineConfig::overdue_after_ns` goes before all fresh ones, in arrival order; see
//! [`super::order`]); the baselines serve it first come first served, as vLLM's and S-LoRA's
//! schedulers do.
//!
//! vLLM keeps LoRA weights in GPU slots (a fixed share of memory, LRU) with a host LRU behind
//! them, and KV prefix blocks in the rest (LRU, HBM only, the LoRA id in the block hash);
//! nothing links the two, so KV of an evicted LoRA stays: invalid KV. S-LoRA pages adapters and
//! running KV in one pool, loads adapters on demand and evicts them LRU, and frees a request's
//! KV when it finishes.
//!
//! `vllm` loads adapters as vLLM does: synchronously, in the model runner, before the step
//! that needs them (`vllm/lora/worker_manager.py`, `LRUCacheWorkerLoRAManager.add_adapter`:
//! from disk into the CPU cache when it is not there, then into a GPU slot), so every request
//! of that step, decodes included, waits for the copy; see [`super::activate`]. `vllm-async`
//! is the same cache with the loads overlapping compute, as FASTLIBRA does them: a request
//! whose adapter is on its way waits alone. It is kinder to vLLM than vLLM is.

/// The cache policies the engine can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// FASTLIBRA: dependency tree, unified pools, cost-model swapper.
    Fastlibra,
    /// vLLM: static LoRA/KV split, LRU, no dependency tracking, adapters loaded in the step
    /// that needs them (the whole step waits).
    Vllm,
    /// `Vllm` with adapter loads that overlap compute (only the requests that need an adapter
    /// wait for it).
    VllmAsync,
    /// S-LoRA: unified pool, on-demand LRU adapters, no history KV.
    Slora,
    /// FASTLIBRA without dependency maintenance.
    FastlibraWom,
    /// FASTLIBRA with LRU instead of the cost model.
    FastlibraWos,
}

/// How candidates for eviction and prefetch are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// FASTLIBRA's `Eval = LoRA factor × cost × visits × recency` per page.
    CostModel,
    /// Least recently used first (prefetch: most recently used first).
    Lru,
}

/// The knobs a policy sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PolicyKnobs {
    /// Keep the usage dependency between LoRA and KV in HBM.
    pub enforce_dependency: bool,
    /// Keep a request's KV blocks cached after it finishes (and match new requests against
    /// them).
    pub retain_kv: bool,
    /// Move evicted KV to the host tier (else drop it).
    pub offload_kv: bool,
    /// A static share of HBM pages for LoRA adapters (the rest for KV); `None`: unified.
    pub lora_fraction: Option<f64>,
    /// How candidates are ranked.
    pub ranking: Ranking,
    /// Swap out above the high watermark and prefetch below the prefetch watermark on every
    /// tick; otherwise memory is only freed when an allocation needs it.
    pub proactive: bool,
    /// Adapters are loaded synchronously at the start of the step that first needs them (no
    /// step runs while they load), as vLLM's model runner does; otherwise a load overlaps
    /// compute and only the requests that need it wait.
    pub sync_lora_load: bool,
    /// Serve the waiting line freshest first, requests overdue (waited
    /// `EngineConfig::overdue_after_ns`) before all others in arrival order; otherwise first
    /// come first served. See [`super::order`].
    pub fresh_first: bool,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::Fastlibra,
        PolicyKind::Vllm,
        PolicyKind::VllmAsync,
        PolicyKind::Slora,
        PolicyKind::FastlibraWom,
        PolicyKind::FastlibraWos,
    ];

    /// The policy with this command-line name.
    pub fn from_name(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Fastlibra => "fastlibra",
            PolicyKind::Vllm => "vllm",
            PolicyKind::VllmAsync => "vllm-async",
            PolicyKind::Slora => "slora",
            PolicyKind::FastlibraWom => "fastlibra-wom",
            PolicyKind::FastlibraWos => "fastlibra-wos",
        }
    }

    /// Its knobs; `lora_fraction` applies to `vllm` and `vllm-async` only (default 0.2, vLLM's
    /// split as the FASTLIBRA paper measured it).
    pub fn knobs(self, lora_fraction: Option<f64>) -> PolicyKnobs {
        let fastlibra = PolicyKnobs {
            enforce_dependency: true,
            retain_kv: true,
            offload_kv: true,
            lora_fraction: None,
            ranking: Ranking::CostModel,
            proactive: true,
            sync_lora_load: false,
            fresh_first: true,
        };
        let vllm_async = PolicyKnobs {
            enforce_dependency: false,
            retain_kv: true,
            offload_kv: false,
            lora_fraction: Some(lora_fraction.unwrap_or(0.2)),
            ranking: Ranking::Lru,
            proactive: false,
            sync_lora_load: false,
            fresh_first: false,
        };
        match self {
            PolicyKind::Fastlibra => fastlibra,
            PolicyKind::FastlibraWom => PolicyKnobs {
                enforce_dependency: false,
                ..fastlibra
            },
            PolicyKind::FastlibraWos => PolicyKnobs {
                ranking: Ranking::Lru,
                ..fastlibra
            },
            PolicyKind::Vllm => PolicyKnobs {
                sync_lora_load: true,
                ..vllm_async
            },
            PolicyKind::VllmAsync => vllm_async,
            PolicyKind::Slora => PolicyKnobs {
                enforce_dependency: true,
                retain_kv: false,
                offload_kv: false,
                lora_fraction: None,
                ranking: Ranking::Lru,
                proactive: false,
                sync_lora_load: false,
                fresh_first: false,
            },
        }
    }
}
