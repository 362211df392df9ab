//! Ranked selection through ordered indexes, so that finding the `k` lowest (or highest)
//! swap candidates costs O(k log n) plus the non-candidates passed over, not a scan of a whole
//! tier.
//!
//! Every resident node has a *rank key*, a function of its own statistics fixed by
//! [`RankKey`] (its last use, or its decayed visit frequency and recency in the log domain).
//! The tree keeps one ordered set of `(key, slot)` per tier and node kind, updated when a node
//! is attached, moves, is touched or is dropped. A caller scores a node as
//! `offset(kind, tier) + key` with an offset of its choosing (the swapper's LoRA factor and transfer cost), and
//! since adding a constant to an `f32` never reverses an order, each set lists its nodes in
//! score order: selection walks each set from the cheap end, checks the candidate conditions
//! on the way, and stops as soon as the next score cannot beat the `k` found. The result is
//! exactly what a full scan would return, ties broken by slot.
//!
//! Qualification is checked lazily (pinned, moving and non-leaf nodes are passed over). Along
//! a path the key only grows toward the root (a visit touches every ancestor), so leaves come
//! first when walking up and topmost nodes first when walking down. Two kinds of candidate
//! have exact sets of their own instead, because most nodes of their tier do not qualify and
//! passing over them would cost a scan: the swap-out candidates (most HBM nodes are interior
//! or pinned) and the droppable NVMe leaves of the last-tier drop (keys tie along a path, ties
//! go by slot and a parent's slot is usually the lower, so a lazy walk passed over whole chains
//! of interior blocks: about 1,200 per selection in the DGG long run once NVMe had filled).

use std::collections::BTreeSet;

use super::select::{Candidates, Scored};
use super::{ROOT, Tree};
use crate::ids::NodeId;
use crate::node::{Node, NodeKind};
use crate::tier::Tier;

/// How the tree computes a node's rank key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RankKey {
    /// `last_use_ns as f32`: least recently used first.
    LastUse,
    /// `frequency_log2_ref + last_use_ns as f32 × recency_per_ns`: the log2 of a decayed
    /// frequency times a recency factor, up to a constant shared by every node.
    Decayed {
        /// Weight of the last use, per nanosecond (`1 / (τ ln 2)` for a time constant τ).
        recency_per_ns: f32,
    },
}

/// The ordered sets: `[tier][kind]`, kind 0 for LoRA, 1 for KV.
pub(crate) type RankSets = [[BTreeSet<u64>; 2]; 3];

/// An exact candidate set by kind (the swap-out candidates, the droppable NVMe leaves): most
/// nodes of the tier do not qualify, so passing over them lazily would cost a scan.
pub(crate) type ExactSets = [BTreeSet<u64>; 2];

/// An `f32` mapped to a `u32` with the same order as `f32::total_cmp`.
fn ordered_bits(key: f32) -> u32 {
    let bits = key.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

pub(crate) fn entry(key: f32, slot: u32) -> u64 {
    u64::from(ordered_bits(key)) << 32 | u64::from(slot)
}

fn kind_slot(kind: NodeKind) -> usize {
    usize::from(kind == NodeKind::Kv)
}

impl RankKey {
    /// The key of a node with these statistics.
    pub fn key(self, frequency_log2_ref: f32, last_use_ns: u64) -> f32 {
        match self {
            RankKey::LastUse => last_use_ns as f32,
            RankKey::Decayed { recency_per_ns } => {
                frequency_log2_ref + last_use_ns as f32 * recency_per_ns
            }
        }
    }
}

impl Tree {
    pub(crate) fn rank_key_of(&self, node: &Node) -> f32 {
        self.config
            .rank
            .key(node.frequency_log2_ref, node.last_use_ns)
    }

    /// Adds a node resident in `tier` to its ordered set.
    pub(crate) fn rank_insert(&mut self, slot: u32, tier: Tier) {
        let node = &self.nodes[slot as usize];
        if node.kind == NodeKind::Root {
            return;
        }
        let e = entry(self.rank_key_of(node), slot);
        self.ranked[tier.index()][kind_slot(node.kind)].insert(e);
    }

    /// Removes a node (still in the table, statistics unchanged) from `tier`'s ordered set.
    pub(crate) fn rank_remove(&mut self, slot: u32, tier: Tier) {
        let node = &self.nodes[slot as usize];
        self.rank_remove_node(node.kind, self.rank_key_of(node), slot, tier);
    }

    pub(crate) fn rank_remove_node(&mut self, kind: NodeKind, key: f32, slot: u32, tier: Tier) {
        if kind == NodeKind::Root {
            return;
        }
        let removed = self.ranked[tier.index()][kind_slot(kind)].remove(&entry(key, slot));
        debug_assert!(removed, "node {slot} missing from its rank set");
    }

    /// Whether `slot` is a swap-out candidate now (see [`Candidates::SwapOut`]).
    fn swaps_out(&self, slot: u32) -> bool {
        let node = &self.nodes[slot as usize];
        node.kind != NodeKind::Root
            && node.tier == Tier::Hbm
            && self.qualifies(Candidates::SwapOut, slot)
    }

    /// Whether `slot` is a droppable NVMe leaf now (see [`Candidates::Leaves`]).
    fn nvme_leaf(&self, slot: u32) -> bool {
        let node = &self.nodes[slot as usize];
        node.kind != NodeKind::Root
            && node.tier == Tier::Nvme
            && self.qualifies(Candidates::Leaves(Tier::Nvme), slot)
    }

    /// Puts `slot` in the exact candidate sets (swap-out, droppable NVMe leaf) or takes it out,
    /// as its state now says. Called wherever a node's tier, flight, pins, children or HBM
    /// children change.
    pub(crate) fn sync_candidates(&mut self, slot: u32) {
        let (swap_out, nvme_leaf) = (self.swaps_out(slot), self.nvme_leaf(slot));
        let node = &self.nodes[slot as usize];
        if swap_out == node.swap_out && nvme_leaf == node.nvme_leaf {
            return;
        }
        let (kind, e) = (node.kind, entry(self.rank_key_of(node), slot));
        let sets = [
            (&mut self.swap_out[kind_slot(kind)], node.swap_out, swap_out),
            (
                &mut self.nvme_leaves[kind_slot(kind)],
                node.nvme_leaf,
                nvme_leaf,
            ),
        ];
        for (set, was, want) in sets {
            if want && !was {
                set.insert(e);
            } else if was && !want {
                set.remove(&e);
            }
        }
        let node = &mut self.nodes[slot as usize];
        node.swap_out = swap_out;
        node.nvme_leaf = nvme_leaf;
    }

    /// Takes a node whose statistics are about to change out of the sets it is in; returns
    /// what [`Tree::rank_reindex_after`] needs to put it back.
    pub(crate) fn rank_reindex_before(&mut self, slot: u32) -> Indexed {
        let node = &self.nodes[slot as usize];
        let (kind, tier, key) = (node.kind, node.tier, self.rank_key_of(node));
        let indexed = Indexed {
            stable: node.flight.is_none() && kind != NodeKind::Root,
            swap_out: node.swap_out,
            nvme_leaf: node.nvme_leaf,
        };
        if indexed.stable {
            self.rank_remove_node(kind, key, slot, tier);
        }
        if indexed.swap_out {
            self.swap_out[kind_slot(kind)].remove(&entry(key, slot));
        }
        if indexed.nvme_leaf {
            self.nvme_leaves[kind_slot(kind)].remove(&entry(key, slot));
        }
        indexed
    }

    /// Puts a node back into the sets under its new key.
    pub(crate) fn rank_reindex_after(&mut self, slot: u32, indexed: Indexed) {
        let node = &self.nodes[slot as usize];
        let (kind, tier, e) = (node.kind, node.tier, entry(self.rank_key_of(node), slot));
        if indexed.stable {
            self.ranked[tier.index()][kind_slot(kind)].insert(e);
        }
        if indexed.swap_out {
            self.swap_out[kind_slot(kind)].insert(e);
        }
        if indexed.nvme_leaf {
            self.nvme_leaves[kind_slot(kind)].insert(e);
        }
    }

    /// The `k` candidates with the lowest `offset(kind, tier) + key`, ascending (ties by slot),
    /// into `out`. `offset` returns `None` for kinds and tiers to leave out. The same result
    /// as [`Tree::lowest`] with that score, without scanning the tier.
    pub fn lowest_ranked(
        &self,
        which: Candidates,
        k: usize,
        offset: impl Fn(NodeKind, Tier) -> Option<f32>,
        out: &mut Vec<Scored>,
    ) {
        self.select_ranked(which, k, &offset, false, out);
    }

    /// The `k` candidates with the highest `offset(kind, tier) + key`, descending (ties by
    /// slot), into `out`.
    pub fn highest_ranked(
        &self,
        which: Candidates,
        k: usize,
        offset: impl Fn(NodeKind, Tier) -> Option<f32>,
        out: &mut Vec<Scored>,
    ) {
        self.select_ranked(which, k, &offset, true, out);
        for s in out.iter_mut() {
            s.score = -s.score;
        }
    }

    fn select_ranked(
        &self,
        which: Candidates,
        k: usize,
        offset: &dyn Fn(NodeKind, Tier) -> Option<f32>,
        highest: bool,
        out: &mut Vec<Scored>,
    ) {
        out.clear();
        if k == 0 {
            return;
        }
        let mut heap = std::collections::BinaryHeap::from(std::mem::take(out));
        for tier in which.tiers() {
            for kind in [NodeKind::Lora, NodeKind::Kv] {
                let Some(offset) = offset(kind, tier) else {
                    continue;
                };
                let set = match which {
                    Candidates::SwapOut => &self.swap_out[kind_slot(kind)],
                    Candidates::Leaves(Tier::Nvme) => &self.nvme_leaves[kind_slot(kind)],
                    _ => &self.ranked[tier.index()][kind_slot(kind)],
                };
                let walk: &mut dyn Iterator<Item = &u64> = if highest {
                    &mut set.iter().rev()
                } else {
                    &mut set.iter()
                };
                for &e in walk {
                    let slot = e as u32;
                    let node = &self.nodes[slot as usize];
                    let s = offset + self.rank_key_of(node);
                    let s = if highest { -s } else { s };
                    // Scores only get worse from here: stop once one cannot enter.
                    if heap.len() == k
                        && heap
                            .peek()
                            .is_some_and(|top: &Scored| s.total_cmp(&top.score).is_gt())
                    {
                        break;
                    }
                    if !self.qualifies(which, slot) {
                        continue;
                    }
                    let scored = Scored {
                        node: NodeId {
                            key: slot,
                            serial: node.serial,
                        },
                        score: s,
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
        }
        *out = heap.into_sorted_vec();
    }

    /// The ordered sets hold exactly the resident nodes not in flight, each under its current
    /// key.
    pub(crate) fn check_rank_sets(&self) -> Result<(), String> {
        let mut counts = [[0usize; 2]; 3];
        for (slot, node) in &self.nodes {
            if slot == ROOT as usize || node.flight.is_some() {
                continue;
            }
            let set = &self.ranked[node.tier.index()][kind_slot(node.kind)];
            if !set.contains(&entry(self.rank_key_of(node), slot as u32)) {
                return Err(format!(
                    "node {slot} missing from the {} rank set under its current key",
                    node.tier
                ));
            }
            counts[node.tier.index()][kind_slot(node.kind)] += 1;
        }
        for kind in [NodeKind::Lora, NodeKind::Kv] {
            self.check_exact_set(
                kind,
                "swap-out",
                &self.swap_out,
                |t, s| t.swaps_out(s),
                |n| n.swap_out,
            )?;
            self.check_exact_set(
                kind,
                "NVMe leaf",
                &self.nvme_leaves,
                |t, s| t.nvme_leaf(s),
                |n| n.nvme_leaf,
            )?;
        }
        for tier in Tier::ALL {
            let sets = &self.ranked[tier.index()];
            for (kind, (set, &count)) in sets.iter().zip(&counts[tier.index()]).enumerate() {
                if set.len() != count {
                    return Err(format!(
                        "{tier} rank set {kind} lists {} nodes, {count} are resident",
                        set.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// An exact candidate set holds exactly the nodes `qualifies` accepts, each under its
    /// current key, and each node's flag says so.
    fn check_exact_set(
        &self,
        kind: NodeKind,
        name: &str,
        sets: &ExactSets,
        qualifies: impl Fn(&Tree, u32) -> bool,
        flag: impl Fn(&Node) -> bool,
    ) -> Result<(), String> {
        let set = &sets[kind_slot(kind)];
        let mut listed = 0;
        for (slot, node) in self.nodes.iter().filter(|(_, n)| n.kind == kind) {
            let want = qualifies(self, slot as u32);
            if want != flag(node)
                || want != set.contains(&entry(self.rank_key_of(node), slot as u32))
            {
                return Err(format!("node {slot}: {name} set membership is off"));
            }
            listed += usize::from(want);
        }
        if listed != set.len() {
            return Err(format!(
                "the {kind:?} {name} set holds {} nodes, {listed} qualify",
                set.len()
            ));
        }
        Ok(())
    }
}

/// Which sets a node was in before its key changed ([`Tree::rank_reindex_before`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Indexed {
    stable: bool,
    swap_out: bool,
    nvme_leaf: bool,
}
