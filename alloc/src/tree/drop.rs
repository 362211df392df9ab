//! Dropping a node and everything under it: its pages in every tier are freed and its blocks
//! leave the index. Refused, with nothing changed, while any node of the subtree is pinned or
//! in flight.

use super::{ROOT, Tree, kind_index};
use crate::error::{AllocError, Busy, Result};
use crate::ids::{NONE, NodeId};
use crate::node::NodeKind;

/// What [`Tree::drop_subtree`] freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dropped {
    /// Nodes removed.
    pub nodes: u32,
    /// Pages freed per tier.
    pub pages: [u32; 3],
}

impl Tree {
    /// Drops `id` and its whole subtree. Dropping the current version of an adapter
    /// unregisters it.
    pub fn drop_subtree(&mut self, id: NodeId) -> Result<Dropped> {
        self.settle();
        let node = self.get(id)?;
        if node.pins > 0 {
            return Err(AllocError::NodeBusy {
                node: id,
                reason: Busy::Pinned,
            });
        }
        let mut stack = std::mem::take(&mut self.scratch);
        stack.clear();
        stack.push(id.key);
        let mut order_end = 0;
        // First pass: collect the subtree (pre-order) and refuse if anything moves.
        while order_end < stack.len() {
            let slot = stack[order_end];
            order_end += 1;
            if self.nodes[slot as usize].flight.is_some() {
                let busy = self.id_of(slot);
                self.scratch = stack;
                return Err(AllocError::NodeBusy {
                    node: busy,
                    reason: Busy::InFlight,
                });
            }
            let mut child = self.nodes[slot as usize].first_child;
            while child != NONE {
                stack.push(child);
                child = self.nodes[child as usize].next_sibling;
            }
        }
        self.unlink(id.key);
        let mut dropped = Dropped::default();
        for &slot in stack.iter().rev() {
            self.remove_node(slot, &mut dropped);
        }
        self.scratch = stack;
        Ok(dropped)
    }

    /// Detaches `slot` from its parent's child list and HBM child count.
    fn unlink(&mut self, slot: u32) {
        let node = &self.nodes[slot as usize];
        let (parent, prev, next, in_hbm) = (
            node.parent,
            node.prev_sibling,
            node.next_sibling,
            node.counts_in_hbm(),
        );
        if prev == NONE {
            self.nodes[parent as usize].first_child = next;
        } else {
            self.nodes[prev as usize].next_sibling = next;
        }
        if next != NONE {
            self.nodes[next as usize].prev_sibling = prev;
        }
        if in_hbm {
            self.nodes[parent as usize].hbm_children -= 1;
        }
        self.sync_candidates(parent);
    }

    /// Frees one node's pages and slot. Its children are already gone.
    fn remove_node(&mut self, slot: u32, dropped: &mut Dropped) {
        let node = self.nodes.remove(slot as usize);
        debug_assert!(node.flight.is_none() && node.pins == 0 && slot != ROOT);
        let key = self.rank_key_of(&node);
        self.rank_remove_node(node.kind, key, slot, node.tier); // never in flight here
        if node.swap_out {
            self.swap_out[usize::from(node.kind == NodeKind::Kv)]
                .remove(&super::rank::entry(key, slot));
        }
        if node.nvme_leaf {
            self.nvme_leaves[usize::from(node.kind == NodeKind::Kv)]
                .remove(&super::rank::entry(key, slot));
        }
        self.pools[node.tier.index()].free(node.pages);
        self.used_by_kind[node.tier.index()][kind_index(node.kind)] -= node.pages.len();
        dropped.pages[node.tier.index()] += node.pages.len();
        dropped.nodes += 1;
        // The slot is already gone from the slab; fix the resident list by position.
        let pos = node.resident_pos;
        if let Some(moved) = self.resident[node.tier.index()].remove(pos) {
            self.nodes[moved as usize].resident_pos = pos;
        }
        if node.published {
            self.index.remove(&node.key);
        }
        if node.kind == NodeKind::Lora {
            let adapter = (node.key >> 32) as u32;
            if self.adapters.get(&adapter).is_some_and(|e| e.slot == slot) {
                self.adapters.remove(&adapter);
            }
        }
    }
}
