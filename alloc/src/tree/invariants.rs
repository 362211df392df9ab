//! `check_invariants`: recompute every derived count from ground truth and compare.
//!
//! Ground truth is the node table (who owns which page list, who is whose parent) and the pin
//! records. Everything else — free counts, the free map, page owners, per-kind usage, HBM child
//! counts, pin counts, resident lists, the block index and the adapter table — is derived and
//! checked here. The caller decides when: tests, fuzzers and the simulator call it after every
//! step.

use bitvec::prelude::*;

use super::{ROOT, Tree, kind_index};
use crate::ids::NONE;
use crate::node::NodeKind;
use crate::tier::Tier;

/// A broken invariant, described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant violated: {0}")]
pub struct InvariantViolation(pub String);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(InvariantViolation(format!($($fmt)+)));
        }
    };
}

impl Tree {
    /// Recomputes every derived count from ground truth; `Err` names the first mismatch.
    /// Costs O(pages + nodes + pins · depth); meant for tests, fuzzing and debug builds.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_pages()?;
        self.check_structure()?;
        self.check_pins()?;
        self.check_residents()?;
        self.check_index()?;
        self.check_rank_sets().map_err(InvariantViolation)?;
        Ok(())
    }

    /// free + used = capacity per tier, and each page owned by exactly one node.
    fn check_pages(&self) -> Result<(), InvariantViolation> {
        for tier in Tier::ALL {
            let pool = &self.pools[tier.index()];
            let capacity = pool.capacity() as usize;
            let mut seen = bitvec![u64, Lsb0; 0; capacity];
            let mut used_by_kind = [0u32; 2];
            for (slot, node) in &self.nodes {
                let lists = [
                    (node.tier == tier).then_some(node.pages),
                    (node.flight == Some(tier)).then_some(node.flight_pages),
                ];
                for list in lists.into_iter().flatten() {
                    let mut count = 0;
                    for page in pool.iter(list) {
                        ensure!(!seen[page as usize], "{tier} page {page} owned twice");
                        seen.set(page as usize, true);
                        ensure!(!pool.is_free(page), "{tier} page {page} owned but free");
                        ensure!(
                            pool.owner(page) == Some(slot as u32),
                            "{tier} page {page} owner {:?}, expected node slot {slot}",
                            pool.owner(page)
                        );
                        count += 1;
                    }
                    ensure!(count == list.len(), "node {slot} page list length mismatch");
                    used_by_kind[kind_index(node.kind)] += count;
                }
            }
            let owned = seen.count_ones() as u32;
            ensure!(
                pool.pages_free() + owned == pool.capacity(),
                "{tier}: free {} + owned {owned} != capacity {}",
                pool.pages_free(),
                pool.capacity()
            );
            ensure!(
                pool.count_free_bits() == pool.pages_free(),
                "{tier}: free map has {} free pages, counter says {}",
                pool.count_free_bits(),
                pool.pages_free()
            );
            ensure!(
                pool.summary_matches(),
                "{tier}: the free map's word summary disagrees with the free map"
            );
            ensure!(
                used_by_kind == self.used_by_kind[tier.index()],
                "{tier}: pages by kind {used_by_kind:?}, counters say {:?}",
                self.used_by_kind[tier.index()]
            );
        }
        Ok(())
    }

    /// Parent/child links, depths, HBM child counts and the usage dependency.
    fn check_structure(&self) -> Result<(), InvariantViolation> {
        let mut hbm_children = vec![0u32; self.nodes.capacity().max(1)];
        for (slot, node) in &self.nodes {
            if slot == ROOT as usize {
                ensure!(node.kind == NodeKind::Root, "slot 0 is not the root");
                continue;
            }
            ensure!(!node.pages.is_empty(), "node {slot} holds no page");
            let parent = self
                .nodes
                .get(node.parent as usize)
                .ok_or_else(|| InvariantViolation(format!("node {slot} has a dead parent")))?;
            match node.kind {
                NodeKind::Lora => ensure!(node.parent == ROOT, "LoRA {slot} not under the root"),
                NodeKind::Kv => ensure!(
                    matches!(parent.kind, NodeKind::Lora | NodeKind::Kv)
                        && node.depth == parent.depth + 1,
                    "KV {slot} has a bad parent or depth"
                ),
                NodeKind::Root => ensure!(false, "a second root at slot {slot}"),
            }
            ensure!(
                node.flight != Some(node.tier),
                "node {slot} in flight to its own tier"
            );
            if node.counts_in_hbm() {
                hbm_children[node.parent as usize] += 1;
            }
            let exempt = !self.config.enforce_dependency
                && node.kind == NodeKind::Kv
                && parent.kind == NodeKind::Lora;
            if node.tier == Tier::Hbm {
                ensure!(
                    exempt || (parent.tier == Tier::Hbm && parent.flight.is_none()),
                    "node {slot} is in HBM but its parent {} is not (or is leaving)",
                    node.parent
                );
            }
            if node.flight == Some(Tier::Hbm) {
                // Entering HBM: under a parent that is there, or on its way there with it.
                ensure!(
                    exempt
                        || (parent.tier == Tier::Hbm && parent.flight.is_none())
                        || (parent.tier != Tier::Hbm && parent.flight == Some(Tier::Hbm)),
                    "node {slot} is entering HBM but its parent {} is neither there nor entering",
                    node.parent
                );
            }
            self.check_siblings(slot as u32)?;
        }
        for (slot, node) in &self.nodes {
            ensure!(
                node.hbm_children == hbm_children[slot],
                "node {slot}: hbm_children {} but {} children count in HBM",
                node.hbm_children,
                hbm_children[slot]
            );
        }
        Ok(())
    }

    fn check_siblings(&self, slot: u32) -> Result<(), InvariantViolation> {
        let node = &self.nodes[slot as usize];
        if node.prev_sibling == NONE {
            ensure!(
                self.nodes[node.parent as usize].first_child == slot,
                "node {slot} has no previous sibling but is not its parent's first child"
            );
        } else {
            ensure!(
                self.nodes[node.prev_sibling as usize].next_sibling == slot,
                "node {slot}: sibling links disagree"
            );
        }
        if node.next_sibling != NONE {
            let next = &self.nodes[node.next_sibling as usize];
            ensure!(
                next.prev_sibling == slot && next.parent == node.parent,
                "node {slot}: next sibling links disagree"
            );
        }
        Ok(())
    }

    /// Pin counts equal the live pin records, and pinned nodes sit still in HBM.
    fn check_pins(&self) -> Result<(), InvariantViolation> {
        let mut pins = vec![0u32; self.nodes.capacity().max(1)];
        for (_, record) in &self.pins {
            let node = self
                .nodes
                .get(record.slot as usize)
                .ok_or_else(|| InvariantViolation("a pin on a dead node".into()))?;
            ensure!(node.kind != NodeKind::Root, "a pin on the root");
            let mut slot = record.slot;
            while slot != ROOT {
                pins[slot as usize] += 1;
                slot = self.nodes[slot as usize].parent;
            }
        }
        let mut pinned = 0;
        for (slot, node) in &self.nodes {
            if slot == ROOT as usize {
                continue;
            }
            ensure!(
                node.pins == pins[slot],
                "node {slot}: pin count {} but {} live pins",
                node.pins,
                pins[slot]
            );
            if node.pins > 0 {
                pinned += 1;
                ensure!(
                    node.tier == Tier::Hbm && node.flight.is_none(),
                    "pinned node {slot} is not sitting in HBM"
                );
            }
        }
        ensure!(pinned == self.pinned_nodes, "pinned node count is off");
        Ok(())
    }

    /// Resident lists hold exactly the nodes resident in each tier; pinned + unpinned =
    /// resident.
    fn check_residents(&self) -> Result<(), InvariantViolation> {
        let mut resident = [0usize; 3];
        let mut pinned = [0usize; 3];
        for (slot, node) in &self.nodes {
            if slot == ROOT as usize {
                continue;
            }
            let list = self.resident[node.tier.index()].as_slice();
            ensure!(
                list.get(node.resident_pos as usize) == Some(&(slot as u32)),
                "node {slot} missing from the {} resident list",
                node.tier
            );
            resident[node.tier.index()] += 1;
            if node.pins > 0 {
                pinned[node.tier.index()] += 1;
            }
        }
        for tier in Tier::ALL {
            let listed = self.resident[tier.index()].len();
            let evictable = resident[tier.index()] - pinned[tier.index()];
            ensure!(
                evictable + pinned[tier.index()] == listed,
                "{tier}: evictable {evictable} + pinned {} != resident {listed}",
                pinned[tier.index()]
            );
        }
        Ok(())
    }

    /// The block index and adapter table point at live nodes that agree with them.
    fn check_index(&self) -> Result<(), InvariantViolation> {
        let published = self.nodes.iter().filter(|(_, n)| n.published).count();
        ensure!(
            published == self.index.len(),
            "index size != published blocks"
        );
        for (key, &slot) in &self.index {
            let node = self.nodes.get(slot as usize);
            ensure!(
                node.is_some_and(|n| n.published && n.key == *key && n.kind == NodeKind::Kv),
                "index entry {key:#x} points at a node that does not hold it"
            );
        }
        for (id, entry) in &self.adapters {
            let node = self.nodes.get(entry.slot as usize);
            ensure!(
                node.is_some_and(|n| n.kind == NodeKind::Lora
                    && n.key == (u64::from(*id) << 32 | u64::from(entry.version))),
                "adapter {id} points at a node that is not its LoRA"
            );
        }
        Ok(())
    }
}
