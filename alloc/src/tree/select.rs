//! Swap candidates ranked by scores the caller supplies (`alloc` holds no policy).
//!
//! Selection is one pass over the tier's resident list with a bounded heap kept in the caller's
//! output vector, so it costs O(n log k) and allocates nothing once the vector has capacity.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{ROOT, Tree};
use crate::ids::NodeId;
use crate::node::{NodeKind, NodeView};
use crate::tier::Tier;

/// Which nodes to rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// HBM nodes that may be swapped out now: stable, unpinned, and no child in or entering
    /// HBM (without dependency enforcement a LoRA qualifies regardless of its KV).
    SwapOut,
    /// Host or NVMe nodes that may be swapped into HBM now: stable, and their parent is
    /// resident in HBM and staying (the topmost non-resident node of each path).
    SwapIn,
    /// Stable nodes resident in this tier (host → NVMe demotion).
    Stable(Tier),
    /// Stable nodes resident in this tier with no children at all (safe to drop).
    Leaves(Tier),
}

impl Candidates {
    /// The tiers the candidates live in.
    pub(crate) fn tiers(self) -> impl Iterator<Item = Tier> {
        let tiers: &'static [Tier] = match self {
            Candidates::SwapOut => &[Tier::Hbm],
            Candidates::SwapIn => &[Tier::Host, Tier::Nvme],
            Candidates::Stable(t) | Candidates::Leaves(t) => match t {
                Tier::Hbm => &[Tier::Hbm],
                Tier::Host => &[Tier::Host],
                Tier::Nvme => &[Tier::Nvme],
            },
        };
        tiers.iter().copied()
    }
}

/// A node and the score the caller gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The node.
    pub node: NodeId,
    /// Its score.
    pub score: f32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.node.key.cmp(&other.node.key))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Tree {
    /// The `k` candidates with the lowest scores, ascending (ties by slot), into `out`.
    pub fn lowest(
        &self,
        which: Candidates,
        k: usize,
        mut score: impl FnMut(NodeView<'_>) -> f32,
        out: &mut Vec<Scored>,
    ) {
        self.select(which, k, &mut score, false, out);
    }

    /// The `k` candidates with the highest scores, descending (ties by slot), into `out`.
    pub fn highest(
        &self,
        which: Candidates,
        k: usize,
        mut score: impl FnMut(NodeView<'_>) -> f32,
        out: &mut Vec<Scored>,
    ) {
        self.select(which, k, &mut score, true, out);
        for s in out.iter_mut() {
            s.score = -s.score;
        }
    }

    fn select(
        &self,
        which: Candidates,
        k: usize,
        score: &mut dyn FnMut(NodeView<'_>) -> f32,
        negate: bool,
        out: &mut Vec<Scored>,
    ) {
        out.clear();
        if k == 0 {
            return;
        }
        let mut heap = BinaryHeap::from(std::mem::take(out));
        for tier in which.tiers() {
            for &slot in self.resident[tier.index()].as_slice() {
                if !self.qualifies(which, slot) {
                    continue;
                }
                let node = &self.nodes[slot as usize];
                let id = NodeId {
                    key: slot,
                    serial: node.serial,
                };
                let s = score(NodeView { id, node });
                let scored = Scored {
                    node: id,
                    score: if negate { -s } else { s },
                };
                if heap.len() < k {
                    heap.push(scored);
                } else if let Some(mut top) = heap.peek_mut()
                    && scored < *top
                {
                    *top = scored;
                }
            }
        }
        *out = heap.into_sorted_vec();
    }

    /// Whether `id` is, right now, one of the nodes [`Tree::lowest`] would consider for
    /// `which` (false for a dropped node).
    pub fn is_candidate(&self, which: Candidates, id: NodeId) -> bool {
        let Ok(node) = self.get(id) else {
            return false;
        };
        let tier_ok = match which {
            Candidates::SwapOut => node.tier == Tier::Hbm,
            Candidates::SwapIn => node.tier != Tier::Hbm,
            Candidates::Stable(t) | Candidates::Leaves(t) => node.tier == t,
        };
        tier_ok && self.qualifies(which, id.key)
    }

    pub(crate) fn qualifies(&self, which: Candidates, slot: u32) -> bool {
        let node = &self.nodes[slot as usize];
        if node.flight.is_some() || node.pins > 0 {
            return false;
        }
        match which {
            Candidates::SwapOut => node.hbm_children == 0 || !self.leaving_needs_leaf(node.kind),
            Candidates::SwapIn => node.parent == ROOT || self.parent_allows_hbm(slot),
            Candidates::Stable(_) => true,
            Candidates::Leaves(_) => node.first_child == crate::ids::NONE,
        }
    }

    /// HBM pages held by KV blocks whose LoRA is not resident in HBM ("invalid KV"). Always
    /// zero while the dependency is enforced.
    pub fn invalid_kv_pages(&self) -> u32 {
        let mut total = 0;
        let mut lora = self.nodes[ROOT as usize].first_child;
        while lora != crate::ids::NONE {
            let node = &self.nodes[lora as usize];
            if node.kind == NodeKind::Lora && node.tier != Tier::Hbm && node.hbm_children > 0 {
                total += self.hbm_pages_below(lora);
            }
            lora = node.next_sibling;
        }
        total
    }

    fn hbm_pages_below(&self, slot: u32) -> u32 {
        // Only the HBM part of the subtree is walked: a node outside HBM has no HBM children
        // below it except through `hbm_children`, which is zero then.
        let mut total = 0;
        let mut stack = vec![slot];
        while let Some(slot) = stack.pop() {
            let mut child = self.nodes[slot as usize].first_child;
            while child != crate::ids::NONE {
                let node = &self.nodes[child as usize];
                if node.tier == Tier::Hbm {
                    total += node.pages.len();
                }
                if node.hbm_children > 0 {
                    stack.push(child);
                }
                child = node.next_sibling;
            }
        }
        total
    }
}
