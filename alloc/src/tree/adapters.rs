//! Registering, reloading, looking up and unregistering adapter versions.

use super::{AdapterEntry, ROOT, Tree};
use crate::error::{AllocError, Result};
use crate::ids::{AdapterRef, NodeId};
use crate::node::NodeKind;
use crate::tier::Tier;

/// The outcome of [`Tree::register_adapter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The version now current.
    pub adapter: AdapterRef,
    /// Its LoRA node.
    pub node: NodeId,
    /// The LoRA node of the version it replaced, if this was a reload. That node and its KV
    /// stay in the tree (running requests may still hold pins on them) but no match reaches
    /// them any more; the caller drops it with [`Tree::drop_subtree`] once it is unpinned.
    pub retired: Option<NodeId>,
}

impl Tree {
    /// Registers adapter `id` with its weights in `pages` pages of `tier`. Registering an id
    /// that is already registered is a reload: a new version with a new, empty subtree.
    pub fn register_adapter(
        &mut self,
        id: u32,
        pages: u32,
        tier: Tier,
        now_ns: u64,
    ) -> Result<Registered> {
        self.settle();
        if pages == 0 {
            return Err(AllocError::Config(
                "an adapter needs at least one page".into(),
            ));
        }
        self.ensure_room_for_node()?;
        let list = self.pools[tier.index()].alloc(pages, u32::MAX)?;
        let previous = self.adapters.get(&id).copied();
        let version = previous.map_or(0, |e| e.version.wrapping_add(1));
        let slot = self.attach(ROOT, NodeKind::Lora, tier, list);
        {
            let node = &mut self.nodes[slot as usize];
            node.key = (u64::from(id) << 32) | u64::from(version);
        }
        self.touch_one(slot, now_ns);
        self.adapters.insert(id, AdapterEntry { version, slot });
        Ok(Registered {
            adapter: AdapterRef { id, version },
            node: self.id_of(slot),
            retired: previous.map(|e| self.id_of(e.slot)),
        })
    }

    /// The current version of adapter `id`.
    pub fn current_adapter(&self, id: u32) -> Result<AdapterRef> {
        self.adapters
            .get(&id)
            .map(|e| AdapterRef {
                id,
                version: e.version,
            })
            .ok_or(AllocError::UnknownAdapter { adapter: id })
    }

    /// The LoRA node of an adapter version; a typed error if unknown or stale.
    pub fn adapter_node(&self, adapter: AdapterRef) -> Result<NodeId> {
        let entry = self
            .adapters
            .get(&adapter.id)
            .ok_or(AllocError::UnknownAdapter {
                adapter: adapter.id,
            })?;
        if entry.version != adapter.version {
            return Err(AllocError::StaleVersion {
                adapter: adapter.id,
                requested: adapter.version,
                current: entry.version,
            });
        }
        Ok(self.id_of(entry.slot))
    }

    /// Unregisters adapter `id`: drops its LoRA node and every KV block under it. Fails with
    /// [`AllocError::NodeBusy`] (state unchanged) while any of them is pinned or in flight.
    pub fn unregister_adapter(&mut self, id: u32) -> Result<super::Dropped> {
        let entry = self
            .adapters
            .get(&id)
            .copied()
            .ok_or(AllocError::UnknownAdapter { adapter: id })?;
        self.drop_subtree(self.id_of(entry.slot))
    }
}
