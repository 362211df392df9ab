//! FASTLIBRA's performance-driven swapper: one cost model ranks LoRA adapters and KV blocks
//! together.
//!
//! - `Low_lora = Σ_i (1 − (1 − p_i)^BS)`: the expected number of distinct LoRAs in a batch, from
//!   each adapter's share `p_i` of recent visits (decayed frequencies) and the recent batch
//!   size `BS`.
//! - `Retain_i = cost_i × visit_i × decay(t_i)` per page: what keeping node *i* in HBM saves.
//!   `cost_i` is the time to get a page back (LoRA: the copy from where it would land; KV: the
//!   smaller of reloading and recomputing), `visit_i` the decayed visit frequency (the tree's
//!   statistics) and `decay(t_i) = exp(−(now − t_i)/τ)`. Dividing by pages makes the greedy
//!   choice a knapsack density: a large adapter must save more to stay.
//! - **LoRA factor** (direction chosen and tested): `clamp(Low_lora / resident LoRAs, 1/8, 8)`
//!   on LoRA nodes, 1 on KV. While fewer adapters are resident than a batch is expected to
//!   need, the factor is above 1 and adapters outrank KV (they are kept, and prefetched first);
//!   once more are resident than needed it falls below 1 and KV wins. (The paper's Eq. 4, as
//!   printed, would favour adapters exactly when there are already too many.)
//! - `Eval_i = LoRA factor × Retain_i`: swap out HBM leaves in ascending `Eval` above the high
//!   watermark (down to the low one); prefetch the topmost host/NVMe nodes in descending
//!   `Eval` below the prefetch watermark. The same ranking demotes host pages to NVMe and drops
//!   NVMe pages.
//!
//! Scores are computed in the log2 domain: `log2 Eval = log2 factor + log2 cost +
//! log2 freq_ref + t_i/(τ ln 2) + const`, where the constant (the `now` part of both decays)
//! is the same for every node, so ranking needs no exponential per node.

use fastlibra_alloc::{Candidates, NodeKind, NodeState, RankKey, Tier};

use super::Engine;
use super::policy::Ranking;

/// Ranks nodes for one decision; lower = less worth keeping in HBM.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scorer {
    ranking: Ranking,
    lora_factor_log2: f32,
    host_cost_log2: f32,
    nvme_cost_log2: f32,
    kv_cost_cap_log2: f32,
}

impl Scorer {
    /// The part of a node's score fixed by its kind and tier; the score is this plus the
    /// tree's rank key of the node (see [`Engine::rank_key`]), so the tree can keep nodes in
    /// score order between decisions.
    pub(crate) fn offset(&self, kind: NodeKind, tier: Tier) -> f32 {
        match self.ranking {
            Ranking::Lru => 0.0,
            Ranking::CostModel => {
                // Cost per page of getting it back from where it is (or would land).
                let mut cost = match tier {
                    Tier::Nvme => self.nvme_cost_log2,
                    _ => self.host_cost_log2,
                };
                let mut factor = 0.0;
                if kind == NodeKind::Lora {
                    factor = self.lora_factor_log2;
                } else {
                    cost = cost.min(self.kv_cost_cap_log2);
                }
                factor + cost
            }
        }
    }

    /// The offsets of [`Scorer::offset`], for [`fastlibra_alloc::Tree::lowest_ranked`].
    pub(crate) fn offsets(self) -> impl Fn(NodeKind, Tier) -> Option<f32> {
        move |kind, tier| Some(self.offset(kind, tier))
    }
}

/// The LoRA factor from `Low_lora` and the adapters resident (see the module docs).
pub fn lora_factor(low_lora: f64, resident_loras: u32) -> f64 {
    (low_lora / f64::from(resident_loras.max(1))).clamp(0.125, 8.0)
}

/// `Low_lora = Σ_i (1 − (1 − p_i)^BS)` for usage shares `p_i` and batch size `BS`.
pub fn low_lora(shares: impl IntoIterator<Item = f64>, batch_size: f64) -> f64 {
    shares
        .into_iter()
        .map(|p| 1.0 - (1.0 - p.clamp(0.0, 1.0)).powf(batch_size))
        .sum()
}

impl Engine {
    /// The scorer for the current state.
    pub(crate) fn out_scorer(&self) -> Scorer {
        let c = &self.config.costs;
        let per_page_recompute = self.recompute_block_ns() / f64::from(self.config.pages_per_block);
        Scorer {
            ranking: self.config.knobs.ranking,
            lora_factor_log2: self.lora_factor_log2,
            host_cost_log2: c.h2d_ns_per_page.max(1.0).log2() as f32,
            nvme_cost_log2: (c.h2d_ns_per_page + c.nvme_read_ns_per_page)
                .max(1.0)
                .log2() as f32,
            kv_cost_cap_log2: per_page_recompute.max(1.0).log2() as f32,
        }
    }

    /// The rank key the tree orders nodes by for a configuration: the last use for LRU, and
    /// for the cost model the node-dependent part of `log2 Eval`, `log2 freq_ref + t_i/(τ ln 2)`.
    pub(crate) fn rank_key(config: &super::EngineConfig) -> RankKey {
        match config.knobs.ranking {
            Ranking::Lru => RankKey::LastUse,
            Ranking::CostModel => RankKey::Decayed {
                recency_per_ns: (1.0 / (config.recency_tau_ns as f64 * std::f64::consts::LN_2))
                    as f32,
            },
        }
    }

    /// The `k` HBM nodes the swapper would swap out first, ascending by score: the ranking
    /// step of a tick, exposed for benchmarks and inspection.
    pub fn swap_out_candidates(&self, k: usize, out: &mut Vec<fastlibra_alloc::Scored>) {
        let scorer = self.out_scorer();
        self.tree
            .lowest_ranked(Candidates::SwapOut, k, scorer.offsets(), out);
    }

    /// Recomputes `Low_lora` and the LoRA factor from the adapters' visit frequencies.
    pub fn update_lora_factor(&mut self) {
        let half_life = self.config.visit_half_life_ns;
        let mut frequencies = Vec::with_capacity(self.config.adapters.len());
        let mut resident = 0;
        for id in 0..self.config.adapters.len() as u32 {
            let Ok(adapter) = self.tree.current_adapter(id) else {
                continue;
            };
            let Ok(node) = self.tree.adapter_node(adapter) else {
                continue;
            };
            let Ok(view) = self.tree.node(node) else {
                continue;
            };
            frequencies.push(view.frequency_at(self.now_ns, half_life));
            if matches!(
                view.state(),
                NodeState::Stable(Tier::Hbm) | NodeState::InFlight { to: Tier::Hbm, .. }
            ) {
                resident += 1;
            }
        }
        let total: f64 = frequencies.iter().sum();
        let low = if total > 0.0 {
            low_lora(frequencies.iter().map(|f| f / total), self.batch_size_avg)
        } else {
            0.0
        };
        self.low_lora = low;
        self.lora_factor_log2 = lora_factor(low, resident).log2() as f32;
    }

    /// One swapper tick: swap out above the high watermark, prefetch below the prefetch one,
    /// keep the host tier under its high watermark.
    pub(crate) fn swapper_tick(&mut self) {
        self.update_lora_factor();
        let w = self.config.watermarks;
        let usage = self.tree.usage(Tier::Hbm);
        let capacity = f64::from(usage.capacity);
        let used = f64::from(usage.capacity - usage.free);
        if used > w.high * capacity {
            let target = (used - w.low * capacity) as u32;
            let already = self.pending_out_pages;
            if target > already {
                self.evict_hbm(target - already, None);
            }
        } else if used < w.prefetch * capacity {
            self.prefetch((w.prefetch * capacity - used) as u32);
        }
        let host = self.tree.usage(Tier::Host);
        let host_used = f64::from(host.capacity - host.free);
        if host_used > w.high * f64::from(host.capacity) {
            let target = (host_used - w.low * f64::from(host.capacity)) as u32;
            self.make_room(Tier::Host, host.free + target, NodeKind::Kv, false);
        }
    }

    /// Prefetches the most valuable topmost host/NVMe nodes into (toward) HBM, up to `budget`
    /// pages, without crowding the links.
    fn prefetch(&mut self, budget: u32) {
        let depth = self.config.link_queue_depth as usize;
        if self.links.busy(super::Link::H2D) >= depth {
            return;
        }
        let mut out = std::mem::take(&mut self.scratch_scored);
        let scorer = self.out_scorer();
        self.tree
            .highest_ranked(Candidates::SwapIn, 2 * depth, scorer.offsets(), &mut out);
        let mut left = budget;
        for c in &out {
            let Ok(view) = self.tree.node(c.node) else {
                continue;
            };
            let (tier, pages) = (view.tier(), view.pages());
            if pages > left || self.is_doomed(c.node) {
                continue;
            }
            // Never queue prefetches behind prefetches: each link gets at most its queue depth.
            let started = match tier {
                Tier::Host if self.links.busy(super::Link::H2D) < depth => {
                    self.start_transfer(c.node, Tier::Hbm, false)
                }
                Tier::Nvme
                    if self.tree.usage(Tier::Host).free >= pages
                        && self.links.busy(super::Link::NvmeRead) < depth =>
                {
                    self.start_transfer(c.node, Tier::Host, false)
                }
                _ => false,
            };
            if started {
                left -= pages;
                self.stats.prefetches += 1;
            }
        }
        self.scratch_scored = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_lora_counts_expected_distinct_adapters() {
        // One adapter takes everything: one distinct adapter per batch.
        assert!((low_lora([1.0, 0.0, 0.0], 8.0) - 1.0).abs() < 1e-9);
        // Four equally popular adapters and a batch of one: one adapter.
        assert!((low_lora([0.25; 4], 1.0) - 1.0).abs() < 1e-9);
        // ...and a large batch touches all four.
        assert!((low_lora([0.25; 4], 64.0) - 4.0).abs() < 1e-6);
    }

    #[test]
    fn lora_factor_protects_adapters_when_too_few_are_resident() {
        // Fewer resident than a batch needs: adapters outrank KV (factor > 1).
        assert!(lora_factor(8.0, 2) > 1.0);
        // More resident than needed: KV wins (factor < 1).
        assert!(lora_factor(2.0, 8) < 1.0);
        assert_eq!(lora_factor(4.0, 4), 1.0);
        assert_eq!(lora_factor(1000.0, 1), 8.0);
        assert_eq!(lora_factor(0.0, 10), 0.125);
    }
}
