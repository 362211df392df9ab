//! Moving a node between tiers: pages are reserved in the destination at `begin`, the source
//! pages are released at `complete`, and `abort` gives the reservation back.
//!
//! Usage dependency: a node may enter HBM only under a parent resident in HBM (the topmost
//! non-resident node of a path), and may leave HBM only when none of its children is in or
//! entering HBM (a leaf). Pinned nodes never move; a moving node cannot be pinned.
//!
//! A path's missing blocks may travel together: [`Tree::begin_transfer_behind`] starts a
//! node's copy into HBM while its parent's copy into HBM is itself in flight. The caller then
//! completes the parent before the child and aborts the child before the parent, so no node
//! ever *lands* in HBM under a parent that is not there (`complete_transfer` refuses it).

use super::{Tree, kind_index};
use crate::error::{AllocError, Busy, Result};
use crate::ids::NodeId;
use crate::node::NodeKind;
use crate::pool::PageList;
use crate::tier::Tier;

/// A transfer between tiers, as begun, completed or aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// The node moving.
    pub node: NodeId,
    /// The tier it leaves.
    pub from: Tier,
    /// The tier it goes to.
    pub to: Tier,
    /// Pages moved.
    pub pages: u32,
}

impl Tree {
    /// Starts moving `id` to `to`, reserving its pages there (all or nothing).
    pub fn begin_transfer(&mut self, id: NodeId, to: Tier) -> Result<Transfer> {
        self.begin(id, to, false)
    }

    /// Starts moving `id` into HBM behind its parent, whose own copy into HBM may still be in
    /// flight (a path copied as one batch). The caller must complete the parent's transfer
    /// first and abort this one first; see the module docs.
    pub fn begin_transfer_behind(&mut self, id: NodeId) -> Result<Transfer> {
        self.begin(id, Tier::Hbm, true)
    }

    fn begin(&mut self, id: NodeId, to: Tier, behind: bool) -> Result<Transfer> {
        self.settle();
        let node = self.get(id)?;
        if node.flight.is_some() {
            return Err(AllocError::NodeBusy {
                node: id,
                reason: Busy::InFlight,
            });
        }
        if node.pins > 0 {
            return Err(AllocError::NodeBusy {
                node: id,
                reason: Busy::Pinned,
            });
        }
        let from = node.tier;
        if from == to {
            return Err(AllocError::SameTier { node: id, tier: to });
        }
        if to == Tier::Hbm
            && !self.parent_allows_hbm(id.key)
            && !(behind && self.nodes[node.parent as usize].flight == Some(Tier::Hbm))
        {
            return Err(AllocError::ParentNotInHbm { node: id });
        }
        if from == Tier::Hbm && node.hbm_children > 0 && self.leaving_needs_leaf(node.kind) {
            return Err(AllocError::HasHbmChildren {
                node: id,
                children: node.hbm_children,
            });
        }
        let (kind, count, parent) = (node.kind, node.pages.len(), node.parent);
        let reserved = self.pools[to.index()].alloc(count, id.key)?;
        self.used_by_kind[to.index()][kind_index(kind)] += count;
        // A moving node is no candidate for anything: it leaves the rank sets until it lands.
        self.rank_remove(id.key, from);
        let node = &mut self.nodes[id.key as usize];
        node.flight = Some(to);
        node.flight_pages = reserved;
        if to == Tier::Hbm {
            self.nodes[parent as usize].hbm_children += 1;
        }
        self.sync_candidates(id.key);
        self.sync_candidates(parent);
        Ok(Transfer {
            node: id,
            from,
            to,
            pages: count,
        })
    }

    /// Finishes a transfer: the node now lives in the destination; its source pages are free.
    /// A node cannot land in HBM before its parent (see [`Tree::begin_transfer_behind`]).
    pub fn complete_transfer(&mut self, id: NodeId) -> Result<Transfer> {
        self.settle();
        let node = self.get(id)?;
        let to = node.flight.ok_or(AllocError::NoTransfer { node: id })?;
        if to == Tier::Hbm && !self.parent_allows_hbm(id.key) {
            return Err(AllocError::ParentNotInHbm { node: id });
        }
        let (from, kind, parent, old) = (node.tier, node.kind, node.parent, node.pages);
        self.pools[from.index()].free(old);
        self.used_by_kind[from.index()][kind_index(kind)] -= old.len();
        self.remove_resident_list(id.key, from);
        let node = &mut self.nodes[id.key as usize];
        node.tier = to;
        node.pages = node.flight_pages;
        node.flight_pages = PageList::EMPTY;
        node.flight = None;
        self.add_resident(id.key, to);
        if from == Tier::Hbm {
            self.nodes[parent as usize].hbm_children -= 1;
        }
        self.sync_candidates(id.key);
        self.sync_candidates(parent);
        Ok(Transfer {
            node: id,
            from,
            to,
            pages: old.len(),
        })
    }

    /// Cancels a transfer (for example after an I/O error): the reservation is freed and the
    /// node stays where it was. A node with a child copied into HBM behind it (see
    /// [`Tree::begin_transfer_behind`]) cannot abort before that child.
    pub fn abort_transfer(&mut self, id: NodeId) -> Result<Transfer> {
        self.settle();
        let node = self.get(id)?;
        let to = node.flight.ok_or(AllocError::NoTransfer { node: id })?;
        if to == Tier::Hbm && node.tier != Tier::Hbm && node.hbm_children > 0 {
            let exempt = !self.config.enforce_dependency && node.kind == NodeKind::Lora;
            if !exempt {
                return Err(AllocError::HasHbmChildren {
                    node: id,
                    children: node.hbm_children,
                });
            }
        }
        let (from, kind, parent, reserved) = (node.tier, node.kind, node.parent, node.flight_pages);
        self.pools[to.index()].free(reserved);
        self.used_by_kind[to.index()][kind_index(kind)] -= reserved.len();
        let node = &mut self.nodes[id.key as usize];
        node.flight = None;
        node.flight_pages = PageList::EMPTY;
        self.rank_insert(id.key, from);
        if to == Tier::Hbm {
            self.nodes[parent as usize].hbm_children -= 1;
        }
        self.sync_candidates(id.key);
        self.sync_candidates(parent);
        Ok(Transfer {
            node: id,
            from,
            to,
            pages: reserved.len(),
        })
    }

    /// Whether the parent of `slot` lets it into HBM: resident in HBM and staying there. Without
    /// dependency enforcement, a KV block directly under its LoRA may enter regardless.
    pub(crate) fn parent_allows_hbm(&self, slot: u32) -> bool {
        let node = &self.nodes[slot as usize];
        let parent = &self.nodes[node.parent as usize];
        if !self.config.enforce_dependency && parent.kind == NodeKind::Lora {
            return true;
        }
        parent.tier == Tier::Hbm && parent.flight.is_none()
    }

    /// Whether a node of `kind` must be an HBM leaf to leave HBM. Without dependency
    /// enforcement a LoRA may leave while its KV stays.
    pub(crate) fn leaving_needs_leaf(&self, kind: NodeKind) -> bool {
        self.config.enforce_dependency || kind != NodeKind::Lora
    }
}
