//! Live serving: the inputs a server needs beyond a replayed workload.
//!
//! - [`Engine::cancel_request`]: the client went away; the request leaves at once with its
//!   pins and private blocks released, and no outcome is emitted (the driver knows).
//! - [`Engine::handle_step_done_ending`]: a step's tokens, some of which end their request
//!   early (a stop token or string, decided by the driver's sampler), so the next step is
//!   formed without them.
//! - [`Engine::add_adapter`]: a new adapter id at run time (a new name; a new version of a
//!   name is [`Engine::reload_adapter`]).
//! - [`Engine::remove_adapter`]: drops an adapter with its whole subtree once nothing pins or
//!   moves it; the driver stops routing requests to it first.
//!
//! Each keeps the tree's ground truth: a released request leaves nothing pinned, and
//! [`fastlibra_alloc::Tree::check_invariants`] holds after every call.

use fastlibra_alloc::{AllocError, NodeKind, Registered, Tier};

use super::{AdapterInfo, Engine, EngineError};
use crate::outcome::FailureReason;

impl Engine {
    /// Cancels request `id` wherever it is (waiting, ready, running or in the step in flight):
    /// it leaves at once, its pins and private blocks released. No outcome is emitted. False
    /// if the engine does not hold it.
    pub fn cancel_request(&mut self, now_ns: u64, id: u64) -> bool {
        self.advance(now_ns);
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        // `fail` releases everything the request holds; its outcome is not wanted.
        self.fail(slot, FailureReason::Unfinished);
        self.outcomes.pop_back();
        self.schedule();
        true
    }

    /// Like [`Engine::handle_step_done`], and then each request of `ending` that the step
    /// sampled for completes now (its outcome says it finished normally), before the next
    /// step is formed. A request of `ending` that already completed (its last token by
    /// `max_new_tokens`) or is not held is passed over.
    pub fn handle_step_done_ending(
        &mut self,
        now_ns: u64,
        step: u64,
        tokens: &[u32],
        ending: &[u64],
    ) -> Result<(), EngineError> {
        self.advance(now_ns);
        self.step_done(step, tokens)?;
        for &id in ending {
            if let Some(slot) = self.slot_of(id) {
                self.complete_early(slot);
            }
        }
        self.schedule();
        Ok(())
    }

    /// Registers a new adapter at run time, in the host tier (or NVMe when the host is full,
    /// after making room in either). Returns its id, its node and the tier of its pages, which
    /// the driver fills with the adapter's bytes before anything reads them.
    pub fn add_adapter(
        &mut self,
        now_ns: u64,
        info: AdapterInfo,
    ) -> Result<(u32, Registered, Tier), EngineError> {
        self.advance(now_ns);
        let id = self.config.adapters.len() as u32;
        let pages = info.pages;
        // A full CPU cache (vLLM's `max_cpu_loras`) leaves the new adapter on disk, as vLLM
        // reads an adapter into its cache only when a request needs it.
        let cache_full = self
            .cpu_lora_cap()
            .is_some_and(|cap| self.cpu_cached_adapters() >= cap);
        let attempt = |engine: &mut Engine| -> Result<(Registered, Tier), AllocError> {
            let now = engine.now_ns;
            if !cache_full && let Ok(r) = engine.tree.register_adapter(id, pages, Tier::Host, now) {
                return Ok((r, Tier::Host));
            }
            engine
                .tree
                .register_adapter(id, pages, Tier::Nvme, now)
                .map(|r| (r, Tier::Nvme))
        };
        let registered = match attempt(self) {
            Ok(r) => r,
            Err(_) => {
                let room = self.make_room(Tier::Host, pages, NodeKind::Lora, true)
                    || self.make_room(Tier::Nvme, pages, NodeKind::Lora, true);
                if !room {
                    return Err(EngineError::Alloc(AllocError::Config(format!(
                        "no room for an adapter of {pages} pages in the host or NVMe tier"
                    ))));
                }
                attempt(self)?
            }
        };
        self.config.adapters.push(info);
        self.adapter_pages_max = self.adapter_pages_max.max(pages);
        self.note_memory_change();
        self.schedule();
        Ok((id, registered.0, registered.1))
    }

    /// Drops adapter `id` (every version still in the tree) with all of its KV. The driver
    /// calls it once no request of the adapter is held; while a node of it is pinned or
    /// moving, nothing changes and it returns false (call again later). True once gone.
    pub fn remove_adapter(&mut self, now_ns: u64, id: u32) -> bool {
        self.advance(now_ns);
        if self.requests.iter().any(|(_, r)| r.adapter == id) {
            return false;
        }
        let gone = match self.tree.unregister_adapter(id) {
            Ok(_) => true,
            Err(AllocError::UnknownAdapter { .. }) => true,
            Err(_) => false,
        };
        if gone {
            self.note_memory_change();
            self.schedule();
        }
        gone
    }

    /// Requests held for adapter `id` (waiting, ready or running).
    pub fn requests_of_adapter(&self, id: u32) -> usize {
        self.requests
            .iter()
            .filter(|(_, r)| r.adapter == id)
            .count()
    }

    /// Nodes pinned now, or with a pin below them (0 when the engine holds no request).
    pub fn pinned_nodes(&self) -> u32 {
        self.tree.pinned_count()
    }

    fn slot_of(&self, id: u64) -> Option<u32> {
        self.requests
            .iter()
            .find(|(_, r)| r.id == id)
            .map(|(slot, _)| slot as u32)
    }

    /// A request that sampled its last token early completes as `complete` would: its
    /// session remembers its tokens, its outcome has no failure, and it is released.
    fn complete_early(&mut self, slot: u32) {
        let r = &self.requests[slot as usize];
        if r.generated == 0 {
            return; // not sampled yet: nothing ends it early
        }
        if let Some(session) = r.session {
            let tokens = r.tokens.clone();
            self.sessions.insert(session, tokens);
        }
        self.fail(slot, FailureReason::Unfinished);
        if let Some(outcome) = self.outcomes.back_mut() {
            outcome.failure = None;
        }
    }
}
