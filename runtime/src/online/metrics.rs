//! What each shard publishes for `/metrics`, and how the shards' publications add up to one
//! [`RuntimeSnapshot`].
//!
//! A shard owns its [`ShardMetrics`] and copies it into its slot of the shared table about
//! every 100 ms (and whenever it goes idle), so the hot path takes no lock; the front merges
//! the slots when asked.

use std::sync::Mutex;

use fastlibra_alloc::Tier;

use super::api::{DurationHistogram, RuntimeSnapshot, TierPages};
use crate::real::Shard;

/// vLLM's buckets of `time_to_first_token_seconds`.
pub const TTFT_BOUNDS_S: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's buckets of `inter_token_latency_seconds`.
pub const ITL_BOUNDS_S: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM's buckets of `e2e_request_latency_seconds`.
pub const E2E_BOUNDS_S: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];
/// Buckets of the engine-call time (microseconds to tens of milliseconds).
pub const ENGINE_CALL_BOUNDS_S: &[f64] = &[
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 1e-1,
];

impl DurationHistogram {
    /// An empty histogram over `bounds_s` (ascending).
    pub fn with_bounds(bounds_s: &[f64]) -> DurationHistogram {
        DurationHistogram {
            bounds_s: bounds_s.to_vec(),
            counts: vec![0; bounds_s.len() + 1],
            sum_s: 0.0,
        }
    }

    /// Counts one observation of `seconds`.
    pub fn observe(&mut self, seconds: f64) {
        let bucket = self.bounds_s.partition_point(|&b| b < seconds);
        if let Some(c) = self.counts.get_mut(bucket) {
            *c += 1;
        }
        self.sum_s += seconds;
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other`'s observations (same bounds; an empty `self` takes `other`'s bounds).
    pub fn merge(&mut self, other: &DurationHistogram) {
        if self.bounds_s.is_empty() && self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        debug_assert_eq!(self.bounds_s, other.bounds_s, "merging different buckets");
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_s += other.sum_s;
    }
}

/// One shard's gauges and counters.
#[derive(Clone, Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) running: u64,
    pub(crate) waiting: u64,
    /// Adapter ids of running and waiting requests.
    pub(crate) running_adapters: Vec<u32>,
    pub(crate) waiting_adapters: Vec<u32>,
    pub(crate) pages: [TierPages; 3],
    pub(crate) pinned_nodes: u64,
    pub(crate) invalid_kv_pages: u64,
    pub(crate) link_bytes: [u64; 4],
    pub(crate) swap_ins: u64,
    pub(crate) swap_outs: u64,
    pub(crate) nvme_checksum_failures: u64,
    pub(crate) prefix_cache_queries: u64,
    pub(crate) prefix_cache_hits: u64,
    pub(crate) preemptions: u64,
    pub(crate) prompt_tokens: u64,
    pub(crate) generation_tokens: u64,
    pub(crate) requests_finished: u64,
    pub(crate) requests_cancelled: u64,
    pub(crate) engine_call: DurationHistogram,
    pub(crate) ttft: DurationHistogram,
    pub(crate) inter_token: DurationHistogram,
    pub(crate) e2e: DurationHistogram,
    pub(crate) invariant_checks: u64,
    pub(crate) invariant_failures: u64,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            running: 0,
            waiting: 0,
            running_adapters: Vec::new(),
            waiting_adapters: Vec::new(),
            pages: [TierPages::default(); 3],
            pinned_nodes: 0,
            invalid_kv_pages: 0,
            link_bytes: [0; 4],
            swap_ins: 0,
            swap_outs: 0,
            nvme_checksum_failures: 0,
            prefix_cache_queries: 0,
            prefix_cache_hits: 0,
            preemptions: 0,
            prompt_tokens: 0,
            generation_tokens: 0,
            requests_finished: 0,
            requests_cancelled: 0,
            engine_call: DurationHistogram::with_bounds(ENGINE_CALL_BOUNDS_S),
            ttft: DurationHistogram::with_bounds(TTFT_BOUNDS_S),
            inter_token: DurationHistogram::with_bounds(ITL_BOUNDS_S),
            e2e: DurationHistogram::with_bounds(E2E_BOUNDS_S),
            invariant_checks: 0,
            invariant_failures: 0,
        }
    }
}

impl ShardMetrics {
    /// Refreshes the gauges read from the shard's engine and tree.
    pub(crate) fn read_shard(&mut self, shard: &Shard) {
        let engine = shard.engine();
        let tree = engine.tree();
        for tier in [Tier::Hbm, Tier::Host, Tier::Nvme] {
            let usage = tree.usage(tier);
            self.pages[tier.index()] = TierPages {
                total: u64::from(usage.capacity),
                lora: u64::from(usage.lora),
                kv: u64::from(usage.kv),
            };
        }
        self.pinned_nodes = u64::from(engine.pinned_nodes());
        self.invalid_kv_pages = u64::from(tree.invalid_kv_pages());
        let stats = engine.stats();
        self.link_bytes = [
            stats.bytes.h2d,
            stats.bytes.d2h,
            stats.bytes.nvme_read,
            stats.bytes.nvme_write,
        ];
        self.swap_ins = stats.swap_ins_on_demand + stats.prefetches;
        self.swap_outs = stats.swap_outs;
        self.preemptions = stats.preemptions;
        self.nvme_checksum_failures = shard.io_counters().checksum_failures;
    }
}

/// The shards' latest publications, one slot each.
#[derive(Debug, Default)]
pub(crate) struct Published {
    slots: Vec<Mutex<ShardMetrics>>,
}

impl Published {
    pub(crate) fn new(shards: usize) -> Published {
        Published {
            slots: (0..shards)
                .map(|_| Mutex::new(ShardMetrics::default()))
                .collect(),
        }
    }

    /// Shard `s` publishes.
    pub(crate) fn publish(&self, s: usize, metrics: &ShardMetrics) {
        if let Some(slot) = self.slots.get(s) {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            slot.clone_from(metrics);
        }
    }

    /// All shards added up; adapter ids named by `name`.
    pub(crate) fn merged(&self, name: impl Fn(u32) -> Option<String>) -> RuntimeSnapshot {
        let mut out = RuntimeSnapshot::default();
        let mut running = Vec::new();
        let mut waiting = Vec::new();
        let mut hbm_kv = 0u64;
        let mut invalid = 0u64;
        for slot in &self.slots {
            let m = slot.lock().unwrap_or_else(|p| p.into_inner());
            out.running += m.running;
            out.waiting += m.waiting;
            running.extend(&m.running_adapters);
            waiting.extend(&m.waiting_adapters);
            for (a, b) in out.pages.iter_mut().zip(&m.pages) {
                a.total += b.total;
                a.lora += b.lora;
                a.kv += b.kv;
            }
            hbm_kv += m.pages[0].kv;
            invalid += m.invalid_kv_pages;
            out.pinned_hbm_pages += m.pinned_nodes;
            for (a, b) in out.link_bytes.iter_mut().zip(&m.link_bytes) {
                *a += b;
            }
            out.swap_ins += m.swap_ins;
            out.swap_outs += m.swap_outs;
            out.nvme_checksum_failures += m.nvme_checksum_failures;
            out.prefix_cache_queries += m.prefix_cache_queries;
            out.prefix_cache_hits += m.prefix_cache_hits;
            out.preemptions += m.preemptions;
            out.prompt_tokens += m.prompt_tokens;
            out.generation_tokens += m.generation_tokens;
            out.requests_finished += m.requests_finished;
            out.requests_cancelled += m.requests_cancelled;
            out.engine_call.merge(&m.engine_call);
            out.time_to_first_token.merge(&m.ttft);
            out.inter_token_latency.merge(&m.inter_token);
            out.e2e_request_latency.merge(&m.e2e);
            out.invariant_checks += m.invariant_checks;
            out.invariant_failures += m.invariant_failures;
        }
        out.invalid_kv_share = if hbm_kv == 0 {
            0.0
        } else {
            invalid as f64 / hbm_kv as f64
        };
        out.running_adapters = names(running, &name);
        out.waiting_adapters = names(waiting, &name);
        out
    }
}

/// Distinct adapter ids, named, sorted.
fn names(mut ids: Vec<u32>, name: &impl Fn(u32) -> Option<String>) -> Vec<String> {
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<String> = ids.into_iter().filter_map(name).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_at_or_above_them() {
        let mut h = DurationHistogram::with_bounds(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.1);
        h.observe(0.5);
        h.observe(7.0);
        assert_eq!(h.counts, vec![2, 1, 1]);
        assert_eq!(h.count(), 4);
        assert!((h.sum_s - 7.65).abs() < 1e-9);
        let mut total = DurationHistogram::default();
        total.merge(&h);
        total.merge(&h);
        assert_eq!(total.counts, vec![4, 2, 2]);
    }
}
