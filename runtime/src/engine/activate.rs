//! Synchronous adapter loads, as vLLM's model runner does them (the `vllm` policy).
//!
//! vLLM activates the adapters of a batch in the model runner, before the forward pass:
//! `vllm/lora/worker_manager.py`, `LRUCacheWorkerLoRAManager.set_active_adapters` →
//! `_apply_adapters` → `add_adapter`, which loads the checkpoint into the CPU cache when it is
//! not there (`_load_adapter`, `from_local_checkpoint(device="cpu")`; the cache holds
//! `max_cpu_loras` adapters and drops the oldest first, `remove_oldest_adapter`), then
//! `activate_adapter` (`vllm/lora/models.py`, `LRUCacheLoRAModelManager`) copies it into one
//! of `max_loras` GPU slots, evicting the least recently used. The forward pass of the step
//! starts after that, so every request of the step, decodes included, waits for the copies.
//!
//! Here, with [`super::PolicyKnobs::sync_lora_load`]:
//!
//! ```text
//!  arrival, adapter not in HBM ──► waits, nothing loaded (no step is forming for it yet)
//!  no step in flight, one is about to form:
//!    walk the line in arrival order as the scheduler fills a step (token budget, seats);
//!    each request whose adapter is missing is `activating`: its load starts now
//!    (disk → host when not cached there, then host → HBM)
//!  any activation load in flight ──► no step forms (the model runner is busy loading)
//!  all done ──► those requests are ready, and the step forms with them
//!  the next walk comes only after that step has formed (or found nothing to run)
//! ```
//!
//! Only the walk starts loads: a request it left waiting (short of room, its load lost or
//! failed, its adapter moved on disk → host but not yet host → HBM) tries again at the next
//! walk. Loads started outside a walk, or walks back to back, let adapters the line needs
//! evict one another's copies with no step in between; under faults (HBM withheld, stalled or
//! slow steps) the line grew past what the GPU slots and CPU cache hold and the engine loaded
//! adapters until the horizon while decodes waited (campaign seeds 15, 148 and 196).
//!
//! The GPU slots are the static LoRA share of HBM (LRU, `super::room`), and the CPU cache is
//! the host tier, holding at most [`super::EngineConfig::max_cpu_loras`] adapters (LRU; the
//! others wait on disk, the NVMe tier).

use fastlibra_alloc::{Candidates, NodeId, NodeKind, NodeState, Tier};

use super::Engine;
use super::request::Phase;

/// Waiting requests the walk may pass over (not counted into the step) beyond the batch size.
const WALK_SLACK: usize = 64;

impl Engine {
    /// With synchronous loads: starts the adapter loads the next step needs; true while any
    /// is in flight (no step may form then).
    pub(crate) fn activation_pending(&mut self) -> bool {
        if !self.config.knobs.sync_lora_load {
            return false;
        }
        if !self.activation_loads.is_empty() {
            return true;
        }
        if self.activation_walked {
            // A step forms between two walks, whatever the last one's loads made ready.
            self.activation_walked = false;
            return false;
        }
        self.start_activations();
        self.activation_walked = !self.activation_loads.is_empty();
        self.activation_walked
    }

    /// Whether `slot`, whose adapter is not in HBM, must wait for a step to need it before its
    /// load starts.
    pub(crate) fn defers_adapter_load(&self, slot: u32) -> bool {
        self.config.knobs.sync_lora_load
            && (!self.requests[slot as usize].activating || self.step.is_some())
    }

    /// Walks the line as the scheduler fills the next step and lets the requests it would
    /// seat load their adapters (see the module docs).
    fn start_activations(&mut self) {
        let mut budget = self.config.prefill_token_budget;
        let mut seats = self.config.max_batch;
        for &slot in &self.running {
            let r = &self.requests[slot as usize];
            seats = seats.saturating_sub(1);
            if r.phase != Phase::Decode {
                budget = budget.saturating_sub(r.tokens_to_compute());
            }
        }
        let mut examined = 0;
        let mut i = 0;
        let limit = self.config.max_batch as usize + WALK_SLACK;
        while i < self.waiting.len() && seats > 0 && budget > 0 && examined < limit {
            examined += 1;
            let slot = self.waiting[i];
            let r = &self.requests[slot as usize];
            let want = r.tokens_to_compute();
            if want == 0 || r.waiting_on.is_some() || r.short_of_room {
                i += 1;
                continue;
            }
            if r.phase == Phase::Waiting {
                // Only this walk may start its load: a request left waiting (short of room,
                // or its load lost) tries again at the next walk, after this batch's loads.
                self.requests[slot as usize].activating = true;
                self.evaluate(slot);
                self.requests[slot as usize].activating = false;
                if self.waiting.get(i) != Some(&slot) {
                    continue; // it failed and left the line
                }
            }
            let r = &self.requests[slot as usize];
            if r.phase == Phase::Ready || r.waiting_on.is_some() {
                seats -= 1;
                budget = budget.saturating_sub(want);
            }
            i += 1;
        }
    }

    /// Records a transfer that loads an adapter synchronously (see the module docs).
    pub(crate) fn note_activation_load(&mut self, id: u64, kind: NodeKind, urgent: bool) {
        if self.config.knobs.sync_lora_load && urgent && kind == NodeKind::Lora {
            self.activation_loads.insert(id);
        }
    }

    /// The CPU cache bound of the static-split policies (vLLM's `max_cpu_loras`): `None` when
    /// the host tier alone bounds it, or for the other policies.
    pub(crate) fn cpu_lora_cap(&self) -> Option<u32> {
        self.config.knobs.lora_fraction?;
        self.config.max_cpu_loras
    }

    /// Adapters in the CPU cache now: in host memory or HBM, or on their way there.
    pub(crate) fn cpu_cached_adapters(&self) -> u32 {
        let mut cached = 0;
        for id in 0..self.config.adapters.len() as u32 {
            let node = self
                .tree
                .current_adapter(id)
                .and_then(|adapter| self.tree.adapter_node(adapter));
            let Ok(view) = node.and_then(|node| self.tree.node(node)) else {
                continue;
            };
            cached += u32::from(match view.state() {
                NodeState::Stable(tier) => tier != Tier::Nvme,
                NodeState::InFlight { to, .. } => to != Tier::Nvme,
            });
        }
        cached
    }

    /// Before an adapter is read from disk into the CPU cache: if the cache holds
    /// `max_cpu_loras` adapters, the least recently used one that nothing pins goes back to
    /// disk (vLLM's `remove_oldest_adapter`, which also deactivates it when it sits in a GPU
    /// slot). False if every cached adapter is in use.
    pub(crate) fn make_cpu_lora_room(&mut self) -> bool {
        let Some(cap) = self.cpu_lora_cap() else {
            return true;
        };
        let mut cached = 0;
        let mut oldest: Option<(u64, bool, NodeId)> = None;
        for id in 0..self.config.adapters.len() as u32 {
            let node = self
                .tree
                .current_adapter(id)
                .and_then(|adapter| self.tree.adapter_node(adapter));
            let Ok(node) = node else { continue };
            let Ok(view) = self.tree.node(node) else {
                continue;
            };
            let in_cache = match view.state() {
                NodeState::Stable(tier) => tier != Tier::Nvme,
                NodeState::InFlight { to, .. } => to != Tier::Nvme,
            };
            if !in_cache {
                continue;
            }
            cached += 1;
            let movable = match view.state() {
                NodeState::Stable(Tier::Host) => view.pins() == 0,
                NodeState::Stable(Tier::Hbm) => self.tree.is_candidate(Candidates::SwapOut, node),
                _ => false,
            };
            // Host copies go before GPU-resident ones, each least recently used first.
            let key = (view.last_use_ns(), view.tier() == Tier::Hbm, node);
            if movable && oldest.is_none_or(|o| (key.1, key.0) < (o.1, o.0)) {
                oldest = Some(key);
            }
        }
        if cached < cap {
            return true;
        }
        let Some((_, _, node)) = oldest else {
            return false;
        };
        if self.tree.begin_transfer(node, Tier::Nvme).is_err() {
            return false;
        }
        self.tree.complete_transfer(node).expect("just begun");
        self.note_memory_change();
        if self.config.report_clean_moves {
            self.clean_moves.push_back(node);
        }
        true
    }
}
