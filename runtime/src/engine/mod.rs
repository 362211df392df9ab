//! # The engine core: a sans-IO state machine
//!
//! The engine schedules multi-LoRA requests over the [`fastlibra_alloc::Tree`]. It never reads
//! a clock, does no I/O and draws no randomness: time comes in as an argument, work goes out
//! as commands, completions come back as inputs.
//!
//! ```text
//!  driver                                   engine
//!  ──────                                   ──────
//!  handle_arrival(now, request)     ──▶  match prefix, pin, issue swap-ins   ┐
//!  handle_transfer_done(now, id)    ──▶  complete/abort in the tree          ├─ schedule()
//!  handle_step_done(now, tokens)    ──▶  advance requests, publish blocks    │
//!  handle_timeout(now)              ──▶  swapper tick, HBM sample            ┘
//!  poll_transfer()  ◀── TransferCmd (per link, on-demand before background; one node,
//!                        a path's missing blocks, or background demotions to NVMe)
//!  poll_step()      ◀── StepCmd (one compute step in flight at a time)
//!  poll_outcome()   ◀── RequestOutcome (completed or failed requests)
//!  poll_timeout()   ◀── when to call handle_timeout next
//! ```
//!
//! A request waits until its LoRA and its matched history KV sit pinned in HBM, then joins
//! iteration-level continuous batching (a prefill token budget, chunked prefill, a decode
//! batch). A request waiting for a swap-in does not hold up others. When pages run out the
//! policy frees memory first; preemption by recompute is the last resort. See [`policy`] for
//! what each policy does differently.

mod activate;
mod admit;
mod batch;
#[cfg(test)]
mod batch_tests;
pub mod config;
pub mod fuzz;
mod inputs;
pub mod links;
mod live;
mod order;
#[cfg(test)]
mod order_tests;
pub mod policy;
mod progress;
mod recover;
mod request;
mod room;
pub mod swapper;
#[cfg(test)]
mod test_config;

use std::collections::VecDeque;

use fastlibra_alloc::{AllocError, Tier, Tree, TreeConfig};
use rustc_hash::{FxHashMap, FxHashSet};
use slab::Slab;

pub use batch::{PrefillPart, StepCmd};
pub use config::{AdapterInfo, CostHints, EngineConfig, Watermarks};
pub use inputs::StepSeq;
pub use links::{Link, TRANSFER_NODES_MAX, TransferCmd};
pub use policy::{PolicyKind, PolicyKnobs, Ranking};
pub use recover::Lost;

use crate::outcome::{EngineStats, FailureReason, RequestOutcome};
use request::Request;

/// A request as the driver hands it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRequest {
    /// Id, unique within the run.
    pub id: u64,
    /// Adapter index (into `EngineConfig::adapters`).
    pub adapter: u32,
    /// Session id: a follow-up turn of a session extends the session's history.
    pub session: Option<u64>,
    /// New prompt tokens (appended to the session's history, if any).
    pub tokens: Vec<u32>,
    /// Tokens to generate (at least one).
    pub max_new_tokens: u32,
}

/// Why a transfer or a whole input failed to apply.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The driver reported a transfer id the engine never issued (or twice).
    #[error("unknown transfer {0}")]
    UnknownTransfer(u64),
    /// The driver reported a step that is not in flight, or the wrong number of tokens.
    #[error("step {0} is not in flight or its outputs do not match")]
    BadStep(u64),
    /// An adapter id the engine was not built with.
    #[error("unknown adapter {0}")]
    UnknownAdapter(u32),
    /// Bad configuration.
    #[error(transparent)]
    Alloc(#[from] AllocError),
}

/// Timers, one slot per kind (the engine has one: the swapper tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Swapper tick and HBM sample.
    Tick,
}

/// The engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) tree: Tree,
    /// Adapter id → current version (the tree knows it too; kept for speed).
    pub(crate) requests: Slab<Request>,
    /// Arrivals so far: the next request's `seq`.
    pub(crate) arrivals: u64,
    /// Requests not yet admitted to a batch, in arrival order (`seq`).
    pub(crate) waiting: VecDeque<u32>,
    /// Requests whose state must be re-evaluated (new, or a transfer they waited for ended),
    /// as (slot, request id) so that a reused slot is never mistaken for its old request.
    pub(crate) dirty: VecDeque<(u32, u64)>,
    /// Admitted requests (prefill or decode), in arrival order (`seq`): the oldest first,
    /// the next victim of a preemption last.
    pub(crate) running: Vec<u32>,
    pub(crate) sessions: FxHashMap<u64, Vec<u32>>,
    pub(crate) links: links::Links,
    /// Transfers handed to the driver (polled) and not yet reported.
    pub(crate) transfers: FxHashMap<u64, TransferCmd>,
    /// Requests waiting on each node's transfer.
    pub(crate) waiters: FxHashMap<fastlibra_alloc::NodeId, Vec<(u32, u64)>>,
    pub(crate) next_transfer: u64,
    /// Synchronous adapter loads in flight (see [`activate`]): no step forms meanwhile.
    pub(crate) activation_loads: FxHashSet<u64>,
    /// With synchronous adapter loads: the last walk started loads, so the next step forms
    /// before another walk (see [`activate`]).
    pub(crate) activation_walked: bool,
    pub(crate) step: Option<batch::StepInFlight>,
    /// No step could form, nothing ran and the head of the line was short of room: only the
    /// head may stage until a step forms (see [`progress`]).
    pub(crate) wedged: bool,
    /// An overdue request waits for staging room (see [`order`]); refreshed every pass.
    pub(crate) overdue_short: bool,
    pub(crate) next_step: u64,
    pub(crate) outcomes: VecDeque<RequestOutcome>,
    pub(crate) stats: EngineStats,
    pub(crate) next_tick_ns: u64,
    /// Moving average of the decode batch size (for `Low_lora`).
    pub(crate) batch_size_avg: f64,
    /// Memory was freed or a request left since the last schedule: retry blocked work.
    pub(crate) memory_changed: bool,
    /// Counts memory changes, so that a search that found nothing to evict is not repeated
    /// until something changed.
    pub(crate) memory_epoch: u64,
    /// The epoch at which each LRU queue last found no candidate.
    pub(crate) lru_empty_epoch: [Option<u64>; 2],
    pub(crate) now_ns: u64,
    /// HBM pages pinned by requests that are not running yet (see `staging_fraction`).
    pub(crate) staged_pages: u64,
    /// HBM pages of swap-outs in flight (free once they complete).
    pub(crate) pending_out_pages: u32,
    /// The swapper's latest `Low_lora` and log2 of its LoRA factor.
    pub(crate) low_lora: f64,
    pub(crate) lora_factor_log2: f32,
    /// The on-demand policies' queues of least recently used candidates (LoRA-or-any, KV).
    pub(crate) lru_queues: [VecDeque<(fastlibra_alloc::NodeId, u64)>; 2],
    /// Nodes to drop as soon as nothing pins or moves them: KV whose data was lost, retired
    /// adapter versions. None of them is ever loaded again.
    pub(crate) doomed: Vec<fastlibra_alloc::NodeId>,
    /// Adapters moved without a copy, for the driver to fill (see
    /// `EngineConfig::report_clean_moves`).
    pub(crate) clean_moves: VecDeque<fastlibra_alloc::NodeId>,
    /// Adapters whose copy was lost with no room for a new one, to register again.
    pub(crate) pending_registrations: Vec<u32>,
    /// Adapters registered again by the engine, for the driver to fill.
    pub(crate) registrations: VecDeque<(fastlibra_alloc::Registered, Tier)>,
    /// The largest adapter this engine has served, in pages. It never shrinks: adapters
    /// admitted past the LoRA region while a larger one existed stay legal after a reload
    /// makes that one smaller.
    pub(crate) adapter_pages_max: u32,
    pub(crate) scratch_match: fastlibra_alloc::Match,
    pub(crate) scratch_scored: Vec<fastlibra_alloc::Scored>,
    /// The waiting line in serving order, for `seat_ready`.
    pub(crate) scratch_line: Vec<u32>,
}

impl Engine {
    /// Builds an engine: the tree and its pools, every adapter registered in the host tier (or
    /// NVMe when the host is full).
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let mut tree_config =
            TreeConfig::new(config.pages, config.pages_per_block, config.block_tokens);
        tree_config.enforce_dependency = config.knobs.enforce_dependency;
        tree_config.visit_half_life_ns = config.visit_half_life_ns;
        tree_config.max_pins = 1 << 20;
        tree_config.rank = Engine::rank_key(&config);
        let mut tree = Tree::new(tree_config)?;
        // With a CPU cache bound (vLLM's `max_cpu_loras`) only that many start in host memory.
        let host_cap = match config.knobs.lora_fraction {
            Some(_) => config.max_cpu_loras.unwrap_or(u32::MAX),
            None => u32::MAX,
        };
        for (id, adapter) in config.adapters.iter().enumerate() {
            let id = id as u32;
            let in_host = id < host_cap
                && tree
                    .register_adapter(id, adapter.pages, Tier::Host, 0)
                    .is_ok();
            if !in_host {
                tree.register_adapter(id, adapter.pages, Tier::Nvme, 0)?;
            }
        }
        Ok(Engine {
            links: links::Links::new(config.link_queue_depth),
            tree,
            requests: Slab::with_capacity(4096),
            arrivals: 0,
            waiting: VecDeque::new(),
            dirty: VecDeque::new(),
            running: Vec::new(),
            sessions: FxHashMap::default(),
            transfers: FxHashMap::default(),
            waiters: FxHashMap::default(),
            next_transfer: 1,
            activation_loads: FxHashSet::default(),
            activation_walked: false,
            step: None,
            wedged: false,
            overdue_short: false,
            next_step: 1,
            outcomes: VecDeque::new(),
            stats: EngineStats::default(),
            next_tick_ns: 0,
            batch_size_avg: 1.0,
            memory_changed: false,
            memory_epoch: 0,
            lru_empty_epoch: [None; 2],
            now_ns: 0,
            pending_out_pages: 0,
            staged_pages: 0,
            low_lora: 0.0,
            lora_factor_log2: 0.0,
            lru_queues: Default::default(),
            doomed: Vec::new(),
            clean_moves: VecDeque::new(),
            pending_registrations: Vec::new(),
            registrations: VecDeque::new(),
            adapter_pages_max: config.adapters.iter().map(|a| a.pages).max().unwrap_or(0),
            scratch_match: Default::default(),
            scratch_scored: Vec::with_capacity(256),
            scratch_line: Vec::new(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The tree (for inspection and invariant checks).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Counters and the HBM timeline so far.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The swapper's latest `Low_lora` (expected distinct adapters per batch).
    pub fn low_lora(&self) -> f64 {
        self.low_lora
    }

    /// Requests the engine still holds (waiting, ready or running).
    pub fn active_requests(&self) -> usize {
        self.requests.len()
    }

    /// A request arrives.
    pub fn handle_arrival(&mut self, now_ns: u64, request: NewRequest) {
        self.advance(now_ns);
        self.admit_new(request);
        self.schedule();
    }

    /// The driver finished (or failed) a transfer.
    pub fn handle_transfer_done(
        &mut self,
        now_ns: u64,
        id: u64,
        ok: bool,
    ) -> Result<(), EngineError> {
        self.advance(now_ns);
        self.transfer_done(id, ok)?;
        self.schedule();
        Ok(())
    }

    /// The driver finished the step in flight; `tokens` holds one sampled token per entry of
    /// the step's `samples`, in order.
    pub fn handle_step_done(
        &mut self,
        now_ns: u64,
        step: u64,
        tokens: &[u32],
    ) -> Result<(), EngineError> {
        self.advance(now_ns);
        self.step_done(step, tokens)?;
        self.schedule();
        Ok(())
    }

    /// A timer from [`Engine::poll_timeout`] expired.
    pub fn handle_timeout(&mut self, now_ns: u64) {
        self.advance(now_ns);
        if now_ns >= self.next_tick_ns {
            self.next_tick_ns = now_ns + self.config.tick_ns;
            self.sample_memory();
            self.drop_doomed();
            if self.config.knobs.proactive {
                self.swapper_tick();
            }
            // A safety net: whatever waits on memory is looked at again every tick.
            self.note_memory_change();
        }
        self.schedule();
    }

    /// A session has ended: forget its history.
    pub fn end_session(&mut self, session: u64) {
        self.sessions.remove(&session);
    }

    /// The next transfer for the driver to carry out. Its nodes are final once polled (the
    /// engine adds nodes only to commands it still holds).
    pub fn poll_transfer(&mut self) -> Option<TransferCmd> {
        let cmd = self.links.poll()?;
        self.transfers.insert(cmd.id, cmd);
        Some(cmd)
    }

    /// The next compute step (at most one in flight).
    pub fn poll_step(&mut self) -> Option<StepCmd> {
        self.step.as_mut().and_then(|s| s.cmd.take())
    }

    /// An adapter the engine moved to a lower tier without a copy (its weights are immutable
    /// and also exist below): the driver writes its weights into the node's new pages before
    /// anything reads them. Only with `EngineConfig::report_clean_moves`.
    pub fn poll_clean_move(&mut self) -> Option<fastlibra_alloc::NodeId> {
        self.clean_moves.pop_front()
    }

    /// A finished or failed request.
    pub fn poll_outcome(&mut self) -> Option<RequestOutcome> {
        self.outcomes.pop_front()
    }

    /// When to call [`Engine::handle_timeout`] next, and for which timer.
    pub fn poll_timeout(&self) -> Option<(u64, Timer)> {
        Some((self.next_tick_ns, Timer::Tick))
    }

    /// Ends the run: every request still held fails as unfinished (none vanishes).
    pub fn finish(&mut self, now_ns: u64) {
        self.advance(now_ns);
        let slots: Vec<u32> = self.requests.iter().map(|(slot, _)| slot as u32).collect();
        for slot in slots {
            self.fail(slot, FailureReason::Unfinished);
        }
    }

    /// Memory was freed, unpinned or moved: blocked work may proceed.
    pub(crate) fn note_memory_change(&mut self) {
        self.memory_changed = true;
        self.memory_epoch += 1;
    }

    fn advance(&mut self, now_ns: u64) {
        debug_assert!(now_ns >= self.now_ns, "time went backwards");
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// One scheduling pass: re-evaluate waiting requests, form a step if none is in flight,
    /// release transfers to the links.
    fn schedule(&mut self) {
        self.note_overdue_short();
        self.evaluate_dirty();
        if self.memory_changed {
            self.memory_changed = false;
            self.retry_blocked();
        }
        if self.step.is_none() {
            self.form_step();
        }
        self.links.release();
        if self.config.check_invariants {
            if let Err(violation) = self.tree.check_invariants() {
                panic!("{violation}");
            }
            self.check_engine_invariants();
        }
    }

    /// Engine-level checks: the policy's promises that the tree alone cannot see.
    fn check_engine_invariants(&self) {
        assert!(
            !self.wedged || (self.running.is_empty() && self.step.is_none()),
            "the line is wedged while a step runs"
        );
        assert!(
            self.activation_loads.is_empty() || self.step.is_none(),
            "a step runs while adapters load synchronously"
        );
        let seq = |s: u32| self.requests[s as usize].seq;
        assert!(
            self.running.is_sorted_by_key(|&s| seq(s))
                && self.waiting.iter().is_sorted_by_key(|&s| seq(s)),
            "the running list or the waiting line is out of arrival order"
        );
        if self.config.knobs.enforce_dependency {
            assert_eq!(self.tree.invalid_kv_pages(), 0, "invalid KV in HBM");
        }
        if let Some(fraction) = self.config.knobs.lora_fraction {
            let usage = self.tree.usage(Tier::Hbm);
            let region = (f64::from(usage.capacity) * fraction) as u32;
            assert!(
                usage.lora <= region.max(self.max_adapter_pages()),
                "LoRA region overrun"
            );
        }
    }

    pub(crate) fn max_adapter_pages(&self) -> u32 {
        self.adapter_pages_max
    }

    /// Records a sample of HBM use.
    fn sample_memory(&mut self) {
        let usage = self.tree.usage(Tier::Hbm);
        let invalid = self.tree.invalid_kv_pages();
        self.stats.timeline.push(crate::outcome::MemorySample {
            t_ns: self.now_ns,
            capacity_pages: usage.capacity,
            lora_pages: usage.lora,
            kv_valid_pages: usage.kv - invalid,
            kv_invalid_pages: invalid,
        });
    }
}
