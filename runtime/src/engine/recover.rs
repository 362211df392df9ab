//! Recovery: data that is lost in transit and adapters reloaded under the same name.
//!
//! - A transfer whose **source** turned out unusable (a page that failed its checksum, an
//!   unrecoverable read error) is reported with [`Engine::handle_transfer_lost`]. The data is
//!   never used: a KV node is dropped with everything under it (its requests recompute it);
//!   an adapter is registered again from its source as a new version.
//! - [`Engine::reload_adapter`] registers new weights under an existing adapter id. The old
//!   version and all KV computed with it leave the index at once (no request can match them)
//!   and are dropped as soon as nothing pins or moves them. Waiting requests switch to the new
//!   version; running ones finish with the version they started with.

use fastlibra_alloc::{NodeId, NodeKind, Registered, Tier};

use super::{AdapterInfo, Engine, EngineError};

/// What [`Engine::handle_transfer_lost`] did with the node whose data was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// KV nodes (every node of the command), or an adapter version a reload had already
    /// replaced: dropped with their subtrees now (`true`), or marked to be dropped as soon as
    /// nothing under them is pinned or moving (`false`); requests recompute them meanwhile.
    Kv {
        /// Whether it is gone already.
        dropped: bool,
    },
    /// An adapter: a new version was registered; the driver must write the adapter's bytes
    /// into the new node's pages (`Registered::node`, in `tier`) before anything reads them.
    AdapterReloaded {
        /// The new version and its node.
        registered: Registered,
        /// The tier its pages are in.
        tier: Tier,
    },
    /// An adapter with no room anywhere for a new copy: the lost copy is never loaded again,
    /// its requests wait, and the engine registers the adapter again as soon as there is room
    /// (at a later tick); the driver then gets the new node from
    /// [`Engine::poll_registration`] and writes the adapter's bytes into it.
    AdapterPending,
}

impl Engine {
    /// The driver could not carry out transfer `id` because its source data is unusable (a
    /// page failed its checksum, or could not be read). See the module docs.
    pub fn handle_transfer_lost(&mut self, now_ns: u64, id: u64) -> Result<Lost, EngineError> {
        self.advance(now_ns);
        let cmd = *self
            .transfers
            .get(&id)
            .ok_or(EngineError::UnknownTransfer(id))?;
        self.transfer_done(id, false)?;
        self.stats.transfer_failures -= 1; // counted as lost, not as a plain failure
        self.stats.nodes_lost += cmd.nodes().len() as u64;
        self.stats.pages_lost += u64::from(cmd.pages);
        // An adapter travels alone; several nodes in one command are KV blocks.
        let first = cmd.nodes()[0];
        let view = self.tree.node(first)?;
        let adapter = (view.key() >> 32) as u32;
        // Only the current version is registered again; a retired one just goes.
        let current_lora = view.kind() == NodeKind::Lora
            && self
                .tree
                .current_adapter(adapter)
                .and_then(|a| self.tree.adapter_node(a))
                == Ok(first);
        let lost = if current_lora {
            let info = self.config.adapters[adapter as usize].clone();
            let registered = match self.register_version(adapter, info.clone()) {
                Err(EngineError::Alloc(_)) => self.register_with_room(adapter, info, first),
                other => other,
            };
            match registered {
                Ok((registered, tier)) => Lost::AdapterReloaded { registered, tier },
                Err(EngineError::Alloc(_)) => {
                    // No room at all: registered again from a later tick.
                    self.pending_registrations.push(adapter);
                    Lost::AdapterPending
                }
                Err(e) => return Err(e),
            }
        } else {
            // Every node of the command is lost (the copy failed as a whole); a parent's drop
            // takes the blocks copied behind it along.
            let mut dropped = true;
            for &node in cmd.nodes() {
                if !self.try_drop(node) {
                    self.doomed.push(node);
                    dropped = false;
                }
            }
            Lost::Kv { dropped }
        };
        self.schedule();
        Ok(lost)
    }

    /// Registers new weights for adapter `adapter` (same id, possibly another rank and page
    /// count). Returns the new version's node and the tier of its pages, which the driver
    /// fills with the new bytes before anything reads them.
    pub fn reload_adapter(
        &mut self,
        now_ns: u64,
        adapter: u32,
        info: AdapterInfo,
    ) -> Result<(Registered, Tier), EngineError> {
        self.advance(now_ns);
        if adapter as usize >= self.config.adapters.len() {
            return Err(EngineError::UnknownAdapter(adapter));
        }
        let out = self.register_version(adapter, info)?;
        self.schedule();
        Ok(out)
    }

    /// Nodes waiting to be dropped (lost data, retired adapter versions).
    pub fn doomed_nodes(&self) -> usize {
        self.doomed.len()
    }

    fn register_version(
        &mut self,
        adapter: u32,
        info: AdapterInfo,
    ) -> Result<(Registered, Tier), EngineError> {
        let now = self.now_ns;
        let (registered, tier) =
            match self
                .tree
                .register_adapter(adapter, info.pages, Tier::Host, now)
            {
                Ok(r) => (r, Tier::Host),
                Err(_) => (
                    self.tree
                        .register_adapter(adapter, info.pages, Tier::Nvme, now)?,
                    Tier::Nvme,
                ),
            };
        self.adapter_pages_max = self.adapter_pages_max.max(info.pages);
        self.config.adapters[adapter as usize] = info;
        self.stats.adapters_reloaded += 1;
        if let Some(old) = registered.retired
            && !self.try_drop(old)
        {
            self.doomed.push(old);
        }
        // Waiting requests of the old version re-match under the new one.
        let stale: Vec<(u32, u64)> = self
            .waiting
            .iter()
            .filter_map(|&slot| {
                let r = &self.requests[slot as usize];
                (r.adapter == adapter).then_some((slot, r.id))
            })
            .collect();
        self.dirty.extend(stale);
        self.note_memory_change();
        Ok((registered, tier))
    }

    /// Registers `adapter` again when no tier had room for a new copy: room is made in NVMe
    /// (cold KV dropped) or the host (demoted), else the lost copy gives its own pages. It is
    /// useless and sits outside HBM, unpinned and no longer moving, so it can go unless KV
    /// under it still moves; the adapter is then unregistered for a moment and its version
    /// count starts again. If nothing works the lost copy is doomed (never loaded again) and
    /// the error says there was no room: the driver reloads the adapter later.
    fn register_with_room(
        &mut self,
        adapter: u32,
        info: AdapterInfo,
        lost: NodeId,
    ) -> Result<(Registered, Tier), EngineError> {
        for tier in [Tier::Nvme, Tier::Host] {
            if self.make_room(tier, info.pages, NodeKind::Lora, true)
                && let Ok(out) = self.register_version(adapter, info.clone())
            {
                return Ok(out);
            }
        }
        if self.try_drop(lost) {
            return self.register_version(adapter, info);
        }
        self.doomed.push(lost);
        self.register_version(adapter, info)
    }

    /// Drops `node` and its subtree if nothing under it is pinned or moving.
    fn try_drop(&mut self, node: NodeId) -> bool {
        match self.tree.drop_subtree(node) {
            Ok(_) => {
                self.note_memory_change();
                true
            }
            Err(_) => self.tree.node(node).is_err(),
        }
    }

    /// Retries the drops that were refused earlier, then the registrations of lost adapters
    /// that found no room (called every tick).
    pub(crate) fn drop_doomed(&mut self) {
        let mut doomed = std::mem::take(&mut self.doomed);
        doomed.retain(|&node| !self.try_drop(node));
        self.doomed = doomed;
        let mut pending = std::mem::take(&mut self.pending_registrations);
        pending.retain(|&adapter| {
            let info = self.config.adapters[adapter as usize].clone();
            let lost = self
                .tree
                .current_adapter(adapter)
                .and_then(|a| self.tree.adapter_node(a));
            let attempt = match lost {
                Ok(node) => self
                    .register_version(adapter, info.clone())
                    .or_else(|_| self.register_with_room(adapter, info, node)),
                // The lost copy is gone (it was the current version): register afresh.
                Err(_) => self.register_version(adapter, info),
            };
            match attempt {
                Ok(done) => {
                    self.registrations.push_back(done);
                    false
                }
                Err(_) => true,
            }
        });
        self.pending_registrations = pending;
    }

    /// An adapter the engine registered again by itself (see [`Lost::AdapterPending`]): the
    /// driver writes the adapter's current weights into the node's pages in that tier before
    /// anything reads them.
    pub fn poll_registration(&mut self) -> Option<(Registered, Tier)> {
        self.registrations.pop_front()
    }

    /// Adapters lost with no room for a new copy, waiting to be registered again.
    pub fn pending_registrations(&self) -> usize {
        self.pending_registrations.len()
    }

    /// Whether `node` is waiting to be dropped: it must never be loaded again.
    pub(crate) fn is_doomed(&self, node: NodeId) -> bool {
        !self.doomed.is_empty() && self.doomed.contains(&node)
    }
}
