//! Arrivals and the waiting room: a request waits until its LoRA and matched history KV sit
//! pinned in HBM. Each evaluation pins the resident part of its path and starts the transfer
//! of the topmost missing node (or decides that recomputing the rest is cheaper), so a request
//! waiting for a swap-in never blocks the others. The KV blocks below that node that sit in the
//! same tier travel in the same transfer command (up to its bound), each behind its parent, so
//! a path comes back in one copy and one completion instead of one per block.

use fastlibra_alloc::{AllocError, Match, MatchedBlock, NodeId, NodeKind, NodeState, Tier};

use super::links::{Link, TransferCmd};
use super::order::LineOrder;
use super::request::{Phase, Request};
use super::{Engine, EngineError, NewRequest};
use crate::outcome::{FailureReason, RequestOutcome};

/// How many memory-blocked waiting requests one scheduling pass re-evaluates.
const RETRY_PER_PASS: usize = 64;

impl Engine {
    pub(crate) fn admit_new(&mut self, new: NewRequest) {
        let Some(adapter) = self.config.adapters.get(new.adapter as usize).cloned() else {
            self.reject(&new, FailureReason::UnknownAdapter);
            return;
        };
        if self.waiting.len() >= self.config.max_waiting as usize {
            self.reject(&new, FailureReason::Rejected);
            return;
        }
        let mut tokens = new
            .session
            .and_then(|s| self.sessions.get(&s).cloned())
            .unwrap_or_default();
        let history_tokens = tokens.len() as u32;
        tokens.extend_from_slice(&new.tokens);
        let prompt_len = tokens.len() as u32;
        let max_new = new.max_new_tokens.max(1);
        if !self.fits_alone(prompt_len + max_new, adapter.pages) {
            self.reject(&new, FailureReason::TooLong);
            return;
        }
        let adapter_ref = match self.tree.current_adapter(new.adapter) {
            Ok(r) => r,
            Err(_) => {
                self.reject(&new, FailureReason::UnknownAdapter);
                return;
            }
        };
        tokens.reserve(max_new as usize);
        let seq = self.arrivals;
        self.arrivals += 1;
        let slot = self.requests.insert(Request {
            id: new.id,
            seq,
            session: new.session,
            adapter: new.adapter,
            adapter_ref,
            tokens,
            keys: Vec::new(),
            keys_for: None,
            prompt_len,
            max_new,
            generated: 0,
            history_tokens,
            phase: Phase::Waiting,
            waiting_on: None,
            pin: None,
            deepest: None,
            chain_blocks: 0,
            computed: 0,
            published_blocks: 0,
            last_key: None,
            private: Default::default(),
            publish_broken: false,
            recompute_history_tokens: 0,
            prefill_tokens: 0,
            arrival_ns: self.now_ns,
            lora_ready_ns: None,
            ready_ns: None,
            first_token_ns: None,
            prefill_ns: 0,
            lora_hit: false,
            kv_hit_blocks: 0,
            kv_reusable_blocks: 0,
            preemptions: 0,
            staged_pages: 0,
            assessed: false,
            short_of_room: false,
            activating: false,
        }) as u32;
        self.waiting.push_back(slot); // the youngest: the line stays in arrival order
        self.dirty.push_back((slot, new.id));
    }

    /// Whether `tokens` of KV plus an adapter of `lora_pages` can ever fit in HBM (within the
    /// policy's regions), leaving a tenth of HBM for everything else.
    fn fits_alone(&self, tokens: u32, lora_pages: u32) -> bool {
        let capacity = f64::from(self.config.pages[Tier::Hbm.index()]) * 0.9;
        let kv_pages = tokens.div_ceil(self.config.block_tokens) * self.config.pages_per_block;
        match self.config.knobs.lora_fraction {
            Some(f) => {
                f64::from(kv_pages) <= capacity * (1.0 - f)
                    && f64::from(lora_pages)
                        <= (capacity * f).max(f64::from(self.max_adapter_pages()))
            }
            None => f64::from(kv_pages + lora_pages) <= capacity,
        }
    }

    fn reject(&mut self, new: &NewRequest, reason: FailureReason) {
        self.outcomes.push_back(RequestOutcome {
            request: new.id,
            session: new.session,
            adapter: new.adapter,
            arrival_ns: self.now_ns,
            finish_ns: self.now_ns,
            prompt_tokens: new.tokens.len() as u32,
            failure: Some(reason),
            ..RequestOutcome::default()
        });
    }

    pub(crate) fn evaluate_dirty(&mut self) {
        while let Some((slot, id)) = self.dirty.pop_front() {
            let live = self
                .requests
                .get(slot as usize)
                .is_some_and(|r| r.id == id && r.phase == Phase::Waiting);
            if live {
                self.evaluate(slot);
            }
        }
    }

    /// Re-evaluates the first waiting requests, in the policy's order (see [`super::order`]),
    /// that wait on memory rather than a transfer.
    pub(crate) fn retry_blocked(&mut self) {
        let blocked: Vec<(u32, u64)> = self
            .line_in(LineOrder::Service)
            .filter_map(|slot| {
                let r = &self.requests[slot as usize];
                (r.phase == Phase::Waiting && r.waiting_on.is_none()).then_some((slot, r.id))
            })
            .take(RETRY_PER_PASS)
            .collect();
        self.dirty.extend(blocked);
        self.evaluate_dirty();
    }

    /// Looks at a waiting request's path and moves it forward one stage.
    pub(crate) fn evaluate(&mut self, slot: u32) {
        if !self.may_stage(slot) {
            self.requests[slot as usize].short_of_room = true;
            return; // retried when memory changes
        }
        self.requests[slot as usize].short_of_room = false;
        let mut found = std::mem::take(&mut self.scratch_match);
        let (adapter_ref, context) = {
            let r = &self.requests[slot as usize];
            (r.adapter_ref, r.prompt_len + r.generated.saturating_sub(1))
        };
        let tokens_end = context as usize;
        let matched = {
            let r = &mut self.requests[slot as usize];
            let end = if self.config.knobs.retain_kv {
                tokens_end
            } else {
                0
            };
            if r.keys_for != Some((adapter_ref, end)) {
                self.tree
                    .block_keys(adapter_ref, &r.tokens[..end], &mut r.keys);
                r.keys_for = Some((adapter_ref, end));
            }
            self.tree.match_keys(adapter_ref, &r.keys, &mut found)
        };
        if let Err(err) = matched {
            debug_assert!(matches!(err, AllocError::StaleVersion { .. }));
            self.scratch_match = found;
            // The adapter was reloaded while this request waited: it starts over with the
            // new version (it has computed nothing yet).
            let adapter = self.requests[slot as usize].adapter;
            match self.tree.current_adapter(adapter) {
                Ok(current) => {
                    self.unhold(slot);
                    self.requests[slot as usize].adapter_ref = current;
                    self.evaluate(slot);
                }
                Err(_) => self.fail(slot, FailureReason::UnknownAdapter),
            }
            return;
        }
        // At least the last token is always computed (its logits give the next token), so a
        // fully cached context still leaves its last block to recompute.
        let max_blocks = (context.max(1) as usize - 1) / self.config.block_tokens as usize;
        found.blocks.truncate(max_blocks);
        self.assess(slot, &found);
        let path_len = 1 + found.blocks.len();
        let node_at = |i: usize| {
            if i == 0 {
                found.lora.map(|b| (b.node, b.state))
            } else {
                Some((found.blocks[i - 1].node, found.blocks[i - 1].state))
            }
        };
        // The resident prefix of the path.
        let mut resident = 0;
        while resident < path_len
            && node_at(resident)
                .is_some_and(|(n, s)| s == NodeState::Stable(Tier::Hbm) && !self.is_doomed(n))
        {
            resident += 1;
        }
        if resident > 0 {
            let (node, _) = node_at(resident - 1).expect("in path");
            self.move_pin(slot, node, resident as u32 - 1);
            let r = &mut self.requests[slot as usize];
            r.lora_ready_ns.get_or_insert(self.now_ns);
        }
        if resident == path_len {
            self.make_ready(slot, &found, resident - 1);
            self.scratch_match = found;
            return;
        }
        let (missing, state) = node_at(resident).expect("in path");
        if resident == 0 && self.is_doomed(missing) {
            // The adapter's copy was lost and it waits to be registered again: wait too.
            self.scratch_match = found;
            return;
        }
        if resident > 0 && (self.is_doomed(missing) || self.recompute_is_cheaper(missing)) {
            self.make_ready(slot, &found, resident - 1);
            self.scratch_match = found;
            return;
        }
        match state {
            NodeState::InFlight { .. } => self.wait_on(slot, missing),
            // A synchronous policy loads the adapter only for the step that needs it.
            NodeState::Stable(_) if resident == 0 && self.defers_adapter_load(slot) => {
                self.requests[slot as usize].waiting_on = None;
            }
            NodeState::Stable(tier) => {
                let started = self.start_swap_in(slot, missing, tier);
                // The blocks below a missing block follow it in the same command; an adapter
                // travels alone (see `join_tail`).
                if let Some(cmd) = started
                    && resident > 0
                {
                    self.swap_in_behind(cmd, &found.blocks[resident..], tier);
                }
            }
        }
        self.scratch_match = found;
    }

    /// Adds the blocks of `rest` (the path below a block whose swap-in command `cmd` is still
    /// queued) to that command while they sit in `tier`, are worth loading and fit.
    fn swap_in_behind(&mut self, cmd: u64, rest: &[MatchedBlock], tier: Tier) {
        let to = hop_toward_hbm(tier);
        for block in rest {
            let stable = self
                .tree
                .node(block.node)
                .is_ok_and(|v| v.state() == NodeState::Stable(tier));
            if !stable || self.is_doomed(block.node) || self.recompute_is_cheaper(block.node) {
                break;
            }
            if self
                .start_transfer_in(block.node, to, true, Some(cmd))
                .is_none()
            {
                break;
            }
            self.stats.swap_ins_on_demand += u64::from(to == Tier::Hbm);
        }
    }

    /// Arrival-time hit statistics, taken at the first evaluation.
    fn assess(&mut self, slot: u32, found: &Match) {
        let block_tokens = self.config.block_tokens;
        let r = &mut self.requests[slot as usize];
        if r.assessed {
            return;
        }
        r.assessed = true;
        r.lora_hit = found
            .lora
            .is_some_and(|b| b.state == NodeState::Stable(Tier::Hbm));
        let hits = found
            .blocks
            .iter()
            .take_while(|b| b.state == NodeState::Stable(Tier::Hbm))
            .count() as u32;
        r.kv_hit_blocks = if r.lora_hit { hits } else { 0 };
        r.kv_reusable_blocks = (found.blocks.len() as u32).max(r.history_tokens / block_tokens);
    }

    /// Moves the request's pin to `node`, the deepest resident node of its path.
    fn move_pin(&mut self, slot: u32, node: NodeId, blocks: u32) {
        let r = &self.requests[slot as usize];
        if r.deepest == Some(node) && r.pin.is_some() {
            return;
        }
        let old = r.pin;
        // Moving down the same path costs only the distance; anything else re-pins.
        let pin = match old {
            Some(old) if self.tree.move_pin_down(old, node).is_ok() => old,
            _ => {
                let pin = self
                    .tree
                    .pin(node)
                    .expect("the resident prefix can be pinned");
                if let Some(old) = old {
                    self.tree.unpin(old).expect("the request's pin is live");
                }
                pin
            }
        };
        // Adapters are shared and few; the history KV is what grows with the queue.
        let staged = blocks * self.config.pages_per_block;
        let r = &mut self.requests[slot as usize];
        r.pin = Some(pin);
        r.deepest = Some(node);
        r.chain_blocks = blocks;
        self.staged_pages = self.staged_pages - u64::from(r.staged_pages) + u64::from(staged);
        r.staged_pages = staged;
    }

    /// Whether a request that holds nothing yet may start staging (pinning and loading its
    /// path): staged paths of requests not yet running may take at most
    /// `EngineConfig::staging_fraction` of HBM, so that waiting requests can never pin all of
    /// it and starve the running ones. While the line is wedged (see [`super::progress`])
    /// only its head stages, whatever it already holds or the others hold. A fresh request
    /// does not start while an overdue one waits for room (see [`super::order`]).
    fn may_stage(&self, slot: u32) -> bool {
        if self.wedged {
            return self.head() == Some(slot);
        }
        let r = &self.requests[slot as usize];
        if r.pin.is_some() {
            return true;
        }
        if self.yields_staging(slot) {
            return false;
        }
        if self.staged_pages == 0 {
            return true;
        }
        let limit = f64::from(self.config.pages[Tier::Hbm.index()]) * self.config.staging_fraction;
        let path = r.history_tokens / self.config.block_tokens * self.config.pages_per_block;
        (self.staged_pages + u64::from(path)) as f64 <= limit
    }

    /// The path down to `found`'s node `last` (0 = the LoRA) is pinned: the request is ready
    /// to prefill the rest.
    fn make_ready(&mut self, slot: u32, found: &Match, last: usize) {
        let block_tokens = self.config.block_tokens;
        let now = self.now_ns;
        let r = &mut self.requests[slot as usize];
        r.phase = Phase::Ready;
        r.waiting_on = None;
        r.activating = false;
        r.ready_ns = Some(now);
        r.chain_blocks = last as u32;
        r.published_blocks = last as u32;
        r.computed = last as u32 * block_tokens;
        r.last_key = (last > 0).then(|| found.keys[last - 1]);
        r.recompute_history_tokens = r.history_tokens.saturating_sub(r.computed);
        let deepest = r.deepest.expect("a ready request holds its path");
        let _ = self.tree.touch(deepest, now);
    }

    /// Whether recomputing the KV block `node` is cheaper than bringing it back.
    fn recompute_is_cheaper(&self, node: NodeId) -> bool {
        let Ok(view) = self.tree.node(node) else {
            return true;
        };
        if view.kind() != NodeKind::Kv {
            return false;
        }
        self.reload_ns(view.tier(), view.pages()) > self.recompute_block_ns()
    }

    fn wait_on(&mut self, slot: u32, node: NodeId) {
        // If its copy still waits behind background work, it is on demand now.
        self.links.promote(node);
        let id = self.requests[slot as usize].id;
        self.requests[slot as usize].waiting_on = Some(node);
        self.waiters.entry(node).or_default().push((slot, id));
    }

    /// Starts the next hop of `node` toward HBM for a waiting request; returns the id of the
    /// command that carries it.
    fn start_swap_in(&mut self, slot: u32, node: NodeId, tier: Tier) -> Option<u64> {
        let to = hop_toward_hbm(tier);
        let Some(cmd) = self.start_transfer_in(node, to, true, None) else {
            // No room yet: room was requested; retry when memory changes.
            let r = &mut self.requests[slot as usize];
            r.waiting_on = None;
            r.short_of_room = true;
            return None;
        };
        self.stats.swap_ins_on_demand += u64::from(to == Tier::Hbm);
        self.wait_on(slot, node);
        Some(cmd)
    }

    /// Begins moving `node` to `to` and queues the copy. Makes room first if needed; returns
    /// false if the destination has no room yet.
    pub(crate) fn start_transfer(&mut self, node: NodeId, to: Tier, urgent: bool) -> bool {
        self.start_transfer_in(node, to, urgent, None).is_some()
    }

    /// [`Engine::start_transfer`], returning the id of the command that carries the node: a
    /// new one, or with `only` the still-queued command `only` (the node joins it or does not
    /// move; see [`Engine::join_tail`]). A node entering HBM whose parent is still on its way
    /// there moves only in its parent's command, behind it. A background KV demotion to NVMe
    /// joins the last background demotion still queued when it fits; an on-demand one
    /// (`urgent`) travels alone.
    pub(crate) fn start_transfer_in(
        &mut self,
        node: NodeId,
        to: Tier,
        urgent: bool,
        only: Option<u64>,
    ) -> Option<u64> {
        let view = self.tree.node(node).ok()?;
        let (from, pages, kind) = (view.tier(), view.pages(), view.kind());
        let link = Link::between(from, to)?;
        let parent = self.tree.parent(node).ok()?;
        let behind = to == Tier::Hbm
            && parent.is_some_and(|p| {
                self.tree
                    .node(p)
                    .is_ok_and(|v| matches!(v.state(), NodeState::InFlight { to: Tier::Hbm, .. }))
            });
        let must_hold = if behind { parent } else { None };
        // A path's blocks share a command, and so do background demotions to NVMe. Swap-out
        // victims do not: batched into one command (tried) they free their HBM pages only when
        // the last victim's copy ends, so on-demand loads wait longer for room: chatbot's mean
        // TTFT went to 333 ms (302 ms one victim per copy; 54 ms batching only paths; 1,200 s
        // at 16 sessions/s, seed 4242). Nor do on-demand demotions (`urgent`: host room a
        // waiting copy needs): a batch frees its host pages only when it lands as a whole.
        // Batching every demotion took chatbot's mean TTFT from 102.1 ms (no demotion
        // batching) to 119.1 ms, P99 1,313 to 1,406 ms; sending the on-demand ones alone gives
        // 108.1 ms, P99 1,070 ms (3,600 s at 16 sessions/s, seed 4242; seeds 1 and 2 in
        // docs/benchmarks.md) and keeps most of the engine events batching saves.
        let must_join = only.is_some() || behind;
        let joined = if must_join {
            Some(self.join_tail(link, urgent, kind, pages, must_hold, only)?)
        } else {
            None
        };
        if kind == NodeKind::Lora && from == Tier::Nvme && !self.make_cpu_lora_room() {
            return None;
        }
        if !self.make_room(to, pages, kind, urgent) {
            return None;
        }
        // Making room queues copies out of the destination tier, never on this link, so the
        // command found above is still the tail.
        let join = if must_join {
            debug_assert_eq!(
                self.join_tail(link, urgent, kind, pages, must_hold, only),
                joined
            );
            joined
        } else if link == Link::NvmeWrite && !urgent {
            self.join_tail(link, urgent, kind, pages, None, None)
        } else {
            None
        };
        let begun = if behind {
            self.tree.begin_transfer_behind(node)
        } else {
            self.tree.begin_transfer(node, to)
        };
        if begun.is_err() {
            return None;
        }
        let bytes = u64::from(pages) * self.config.page_bytes;
        let id = match join {
            Some(_) => self.links.append(link, urgent, node, pages, bytes),
            None => {
                let id = self.next_transfer;
                self.next_transfer += 1;
                let cmd = TransferCmd::new(id, link, node, from, to, pages, bytes, urgent);
                self.links.push(cmd);
                id
            }
        };
        self.note_activation_load(id, kind, urgent);
        if from == Tier::Hbm {
            self.pending_out_pages += pages;
        }
        Some(id)
    }

    /// The id of the last command still queued on `link` (on-demand if `urgent`) if a node of
    /// `kind` and `pages` may join it: only KV joins, and only a command of KV (an adapter
    /// travels alone, so a lost copy names one adapter); the command stays within
    /// [`TRANSFER_NODES_MAX`](super::links::TRANSFER_NODES_MAX) nodes and
    /// `EngineConfig::transfer_pages_max` pages; it holds `must_hold` (a parent the node
    /// follows), and is command `only` when given.
    fn join_tail(
        &self,
        link: Link,
        urgent: bool,
        kind: NodeKind,
        pages: u32,
        must_hold: Option<NodeId>,
        only: Option<u64>,
    ) -> Option<u64> {
        if kind != NodeKind::Kv {
            return None;
        }
        let tail = self.links.tail(link, urgent)?;
        let first_kind = self.tree.node(tail.nodes()[0]).map(|v| v.kind());
        let fits = !tail.is_full()
            && tail.pages.saturating_add(pages) <= self.config.transfer_pages_max
            && first_kind == Ok(NodeKind::Kv)
            && must_hold.is_none_or(|p| tail.nodes().contains(&p))
            && only.is_none_or(|id| tail.id == id);
        fits.then_some(tail.id)
    }

    pub(crate) fn transfer_done(&mut self, id: u64, ok: bool) -> Result<(), EngineError> {
        let cmd = self
            .transfers
            .remove(&id)
            .ok_or(EngineError::UnknownTransfer(id))?;
        self.links.done(cmd.link);
        self.activation_loads.remove(&id);
        if cmd.from == Tier::Hbm {
            self.pending_out_pages -= cmd.pages;
        }
        if ok {
            // Parents before the children copied behind them.
            for &node in cmd.nodes() {
                self.tree.complete_transfer(node)?;
            }
            let bytes = &mut self.stats.bytes;
            match cmd.link {
                Link::H2D => bytes.h2d += cmd.bytes,
                Link::D2H => bytes.d2h += cmd.bytes,
                Link::NvmeRead => bytes.nvme_read += cmd.bytes,
                Link::NvmeWrite => bytes.nvme_write += cmd.bytes,
            }
        } else {
            for &node in cmd.nodes().iter().rev() {
                self.tree.abort_transfer(node)?;
            }
            self.stats.transfer_failures += 1;
        }
        self.note_memory_change();
        for &node in cmd.nodes() {
            let Some(waiters) = self.waiters.remove(&node) else {
                continue;
            };
            for (slot, rid) in waiters {
                if let Some(r) = self.requests.get_mut(slot as usize)
                    && r.id == rid
                    && r.waiting_on == Some(node)
                {
                    r.waiting_on = None;
                    self.dirty.push_back((slot, rid));
                }
            }
        }
        Ok(())
    }
}

/// The next tier up from `tier` on the way to HBM (NVMe data goes through the host).
fn hop_toward_hbm(tier: Tier) -> Tier {
    if tier == Tier::Nvme {
        Tier::Host
    } else {
        Tier::Hbm
    }
}
