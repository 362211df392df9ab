//! Making room in a tier, the way each policy does it.
//!
//! - HBM, unified pool (FASTLIBRA family, S-LoRA): evict the lowest-ranked swap-out candidates.
//!   A LoRA leaves at once (its weights are immutable and a copy stays on the host or disk, so
//!   nothing is copied back); a KV block is copied to the host (if the policy offloads KV and
//!   reloading beats recomputing) or dropped. Copies take time: the caller retries when they
//!   complete.
//! - HBM, static split (vLLM): LoRA slots and KV blocks each live in their own share of HBM and
//!   are evicted LRU within it; evicted KV is dropped.
//! - Host: demote to NVMe (a copy), or drop KV. NVMe: drop KV leaves.

use fastlibra_alloc::{Candidates, NodeId, NodeKind, RankKey, Tier};

use super::Engine;

/// Candidates examined per round of eviction.
const ROUND: usize = 64;
/// Candidates an on-demand (LRU) policy queues per ranking pass.
const LRU_QUEUE: usize = 1024;

impl Engine {
    /// Makes `pages` free in `tier` for a node of `kind`; true if they are free now.
    pub(crate) fn make_room(
        &mut self,
        tier: Tier,
        pages: u32,
        kind: NodeKind,
        urgent: bool,
    ) -> bool {
        match tier {
            Tier::Hbm => self.make_room_hbm(pages, kind, urgent),
            Tier::Host => self.make_room_host(pages, urgent),
            Tier::Nvme => self.make_room_nvme(pages),
        }
    }

    /// Free HBM pages available to a node of `kind` under the policy's split.
    pub(crate) fn hbm_room(&self, kind: NodeKind) -> u32 {
        let usage = self.tree.usage(Tier::Hbm);
        match self.config.knobs.lora_fraction {
            None => usage.free,
            Some(f) => {
                let lora_region =
                    ((f64::from(usage.capacity) * f) as u32).max(self.max_adapter_pages());
                let region_free = match kind {
                    NodeKind::Kv => (usage.capacity - lora_region).saturating_sub(usage.kv),
                    _ => lora_region.saturating_sub(usage.lora),
                };
                region_free.min(usage.free)
            }
        }
    }

    fn make_room_hbm(&mut self, pages: u32, kind: NodeKind, _urgent: bool) -> bool {
        if self.hbm_room(kind) >= pages {
            return true;
        }
        for _ in 0..8 {
            let missing = pages.saturating_sub(self.hbm_room(kind));
            if missing == 0 {
                return true;
            }
            // Copies already on their way out will free enough: wait for them.
            if self.config.knobs.lora_fraction.is_none() && self.pending_out_pages >= missing {
                return false;
            }
            let only = self.config.knobs.lora_fraction.map(|_| kind);
            // A proactive policy under pressure frees down to its low watermark in one go, so
            // that the next allocations find room instead of each waiting for a copy.
            let mut want = missing - self.pending_out_pages.min(missing);
            if self.config.knobs.proactive {
                let usage = self.tree.usage(Tier::Hbm);
                let low = (f64::from(usage.capacity) * self.config.watermarks.low) as u32;
                let above_low = (usage.capacity - usage.free).saturating_sub(low);
                want = want.max(above_low.saturating_sub(self.pending_out_pages));
            }
            if want > 0 && self.evict_hbm(want, only) == 0 {
                return self.hbm_room(kind) >= pages;
            }
        }
        self.hbm_room(kind) >= pages
    }

    /// Evicts swap-out candidates (only of kind `only`, if given) until `pages` pages are freed
    /// or on their way; returns the pages acted on.
    pub(crate) fn evict_hbm(&mut self, pages: u32, only: Option<NodeKind>) -> u32 {
        if !self.config.knobs.proactive {
            return self.evict_lru_queued(pages, only);
        }
        let mut out = std::mem::take(&mut self.scratch_scored);
        let k = (pages / self.config.pages_per_block.max(1)) as usize + ROUND;
        let scorer = self.out_scorer();
        self.tree.lowest_ranked(
            Candidates::SwapOut,
            k,
            |kind, tier| match only {
                Some(only) if kind != only => None,
                _ => Some(scorer.offset(kind, tier)),
            },
            &mut out,
        );
        let mut acted = 0;
        for c in &out {
            if acted >= pages || c.score == f32::INFINITY {
                break;
            }
            acted += self.evict_one(c.node);
        }
        self.scratch_scored = out;
        acted
    }

    /// LRU eviction for the on-demand policies, through a queue of the least recently used
    /// candidates refilled by one ranking pass per [`LRU_QUEUE`] evictions (the role of vLLM's
    /// free-block queue). A queued node that was used since, or stopped being a candidate, is
    /// skipped.
    fn evict_lru_queued(&mut self, pages: u32, only: Option<NodeKind>) -> u32 {
        let queue_index = usize::from(only == Some(NodeKind::Kv));
        let mut acted = 0;
        let mut refilled = false;
        while acted < pages {
            let Some((node, last_use)) = self.lru_queues[queue_index].pop_front() else {
                if refilled || !self.refill_lru_queue(queue_index, only) {
                    break;
                }
                refilled = true;
                continue;
            };
            let still = self.tree.is_candidate(Candidates::SwapOut, node)
                && self
                    .tree
                    .node(node)
                    .is_ok_and(|v| v.last_use_ns() == last_use);
            if still {
                let parent = self.tree.parent(node).ok().flatten();
                acted += self.evict_one(node);
                // Its parent may just have become a leaf; it was used no later than the child,
                // so an exact LRU would take it next.
                if let Some(parent) = parent
                    && self.tree.is_candidate(Candidates::SwapOut, parent)
                    && let Ok(view) = self.tree.node(parent)
                    && only.is_none_or(|kind| view.kind() == kind)
                {
                    let last_use = view.last_use_ns();
                    self.lru_queues[queue_index].push_front((parent, last_use));
                }
            }
        }
        acted
    }

    fn refill_lru_queue(&mut self, queue_index: usize, only: Option<NodeKind>) -> bool {
        if self.lru_empty_epoch[queue_index] == Some(self.memory_epoch) {
            return false; // nothing was evictable, and nothing changed since
        }
        let mut out = std::mem::take(&mut self.scratch_scored);
        if only == Some(NodeKind::Lora) {
            // Adapters are few: rank them directly instead of scanning every HBM node.
            self.lora_candidates(&mut out);
        } else if self.tree.config().rank == RankKey::LastUse {
            // The tree keeps nodes in last-use order: no scan.
            self.tree.lowest_ranked(
                Candidates::SwapOut,
                LRU_QUEUE,
                |kind, _| only.is_none_or(|only| kind == only).then_some(0.0),
                &mut out,
            );
        } else {
            self.tree.lowest(
                Candidates::SwapOut,
                LRU_QUEUE,
                |v| match only {
                    Some(kind) if v.kind() != kind => f32::INFINITY,
                    _ => v.last_use_ns() as f32,
                },
                &mut out,
            );
        }
        let queue = &mut self.lru_queues[queue_index];
        queue.clear();
        for c in out.iter().take_while(|c| c.score != f32::INFINITY) {
            let last_use = self.tree.node(c.node).map_or(0, |v| v.last_use_ns());
            queue.push_back((c.node, last_use));
        }
        self.scratch_scored = out;
        let found = !queue.is_empty();
        self.lru_empty_epoch[queue_index] = (!found).then_some(self.memory_epoch);
        found
    }

    /// The adapters that may leave HBM now, least recently used first.
    fn lora_candidates(&self, out: &mut Vec<fastlibra_alloc::Scored>) {
        out.clear();
        for id in 0..self.config.adapters.len() as u32 {
            let node = self
                .tree
                .current_adapter(id)
                .and_then(|adapter| self.tree.adapter_node(adapter));
            if let Ok(node) = node
                && self.tree.is_candidate(Candidates::SwapOut, node)
                && let Ok(view) = self.tree.node(node)
            {
                out.push(fastlibra_alloc::Scored {
                    node,
                    score: view.last_use_ns() as f32,
                });
            }
        }
        out.sort();
    }

    /// Moves one HBM node out; returns its pages (0 if it could not move now).
    pub(crate) fn evict_one(&mut self, node: NodeId) -> u32 {
        let Ok(view) = self.tree.node(node) else {
            return 0;
        };
        let (kind, pages) = (view.kind(), view.pages());
        self.stats.swap_outs += 1;
        if kind == NodeKind::Lora {
            return if self.evict_clean(node) { pages } else { 0 };
        }
        let keep = self.config.knobs.offload_kv
            && self.reload_ns(Tier::Host, pages) <= self.recompute_block_ns()
            && self.tree.usage(Tier::Host).free >= pages;
        if keep && self.start_transfer(node, Tier::Host, false) {
            return pages;
        }
        self.drop_node(node)
    }

    /// Evicts a LoRA without copying: its weights are immutable and still exist below (a host
    /// copy, or the model store on disk), so its pages are free at once.
    fn evict_clean(&mut self, node: NodeId) -> bool {
        let below: &[Tier] = match self.tree.node(node).map(|v| v.tier()) {
            Ok(Tier::Hbm) => &[Tier::Host, Tier::Nvme],
            Ok(Tier::Host) => &[Tier::Nvme],
            _ => &[],
        };
        for &tier in below {
            if self.tree.begin_transfer(node, tier).is_ok() {
                self.tree.complete_transfer(node).expect("just begun");
                self.note_memory_change();
                if self.config.report_clean_moves {
                    self.clean_moves.push_back(node);
                }
                return true;
            }
        }
        false
    }

    /// Drops a node and its subtree; returns the HBM pages freed.
    pub(crate) fn drop_node(&mut self, node: NodeId) -> u32 {
        match self.tree.drop_subtree(node) {
            Ok(dropped) => {
                self.stats.drops += u64::from(dropped.nodes);
                self.note_memory_change();
                dropped.pages[Tier::Hbm.index()]
            }
            Err(_) => 0,
        }
    }

    /// Makes `pages` free on the host. KV goes to NVMe by copy (its pages free when the copy
    /// lands), or is dropped if NVMe has no room. If `urgent` (a transfer waits for this
    /// room), the demotions that cover the shortfall are on demand: each travels alone and
    /// ahead of background ones, so its pages free as soon as its own copy lands instead of
    /// when a whole batch does. The rest of the round is background work and batches.
    fn make_room_host(&mut self, pages: u32, urgent: bool) -> bool {
        let free = self.tree.usage(Tier::Host).free;
        if free >= pages {
            return true;
        }
        let mut shortfall = if urgent { pages - free } else { 0 };
        let mut out = std::mem::take(&mut self.scratch_scored);
        let scorer = self.out_scorer();
        self.tree.lowest_ranked(
            Candidates::Stable(Tier::Host),
            ROUND,
            scorer.offsets(),
            &mut out,
        );
        for c in &out {
            if self.tree.usage(Tier::Host).free >= pages {
                break;
            }
            let Ok(view) = self.tree.node(c.node) else {
                continue;
            };
            let (kind, node_pages) = (view.kind(), view.pages());
            // An adapter leaves at once (clean). KV is copied to NVMe when it has room (or can
            // make it), else dropped.
            if kind == NodeKind::Lora {
                if self.make_room_nvme(node_pages) && self.evict_clean(c.node) {
                    self.stats.demotions += 1;
                }
            } else if self.make_room_nvme(node_pages)
                && self.start_transfer(c.node, Tier::Nvme, shortfall > 0)
            {
                self.stats.demotions += 1;
                shortfall = shortfall.saturating_sub(node_pages);
            } else {
                self.drop_node(c.node);
            }
        }
        self.scratch_scored = out;
        self.tree.usage(Tier::Host).free >= pages
    }

    fn make_room_nvme(&mut self, pages: u32) -> bool {
        if self.tree.usage(Tier::Nvme).free >= pages {
            return true;
        }
        // Only KV leaves are dropped here, each freeing one block's pages: the first `needed`
        // candidates are all the loop below can use (it stops once there is room), so asking
        // for more only costs a longer selection on every demotion into a full NVMe tier.
        let deficit = pages - self.tree.usage(Tier::Nvme).free;
        let needed = deficit.div_ceil(self.config.pages_per_block.max(1)) as usize;
        let mut out = std::mem::take(&mut self.scratch_scored);
        let scorer = self.out_scorer();
        self.tree.lowest_ranked(
            Candidates::Leaves(Tier::Nvme),
            needed.min(ROUND),
            |kind, tier| (kind != NodeKind::Lora).then(|| scorer.offset(kind, tier)),
            &mut out,
        );
        for c in &out {
            if self.tree.usage(Tier::Nvme).free >= pages || c.score == f32::INFINITY {
                break;
            }
            self.drop_node(c.node);
        }
        self.scratch_scored = out;
        self.tree.usage(Tier::Nvme).free >= pages
    }

    /// Time to bring `pages` back to HBM from `tier`, ns.
    pub(crate) fn reload_ns(&self, tier: Tier, pages: u32) -> f64 {
        let c = &self.config.costs;
        let per_page = match tier {
            Tier::Hbm => 0.0,
            Tier::Host => c.h2d_ns_per_page,
            Tier::Nvme => c.h2d_ns_per_page + c.nvme_read_ns_per_page,
        };
        per_page * f64::from(pages)
    }

    /// Time to recompute one KV block, ns.
    pub(crate) fn recompute_block_ns(&self) -> f64 {
        self.config.costs.recompute_ns_per_token * f64::from(self.config.block_tokens)
    }
}
