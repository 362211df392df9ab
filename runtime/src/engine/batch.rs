//! Iteration-level continuous batching: forming a step (decodes first, then prefill chunks
//! within the token budget, ready requests in the policy's order: first come first served, or
//! fastlibra's fresh first with an aging bound, see [`super::order`]), growing each request's
//! KV chain, and advancing requests when the step completes. Preemption by recompute is the
//! last resort when pages run out.
//!
//! # Who gives way when pages run out
//!
//! Requests rank by arrival (`Request::seq`). The running list and the waiting line are both
//! kept in that order; a preempted request goes back to its place in the line. The order in
//! which ready requests are *offered* seats may differ (fresh first), but once seated they
//! rank by arrival here, and the progress rule seats the oldest first.
//!
//! - **A request is admitted with its whole prompt.** A ready request joins the batch only
//!   once its chain has blocks for all of its prefill, though each step computes at most the
//!   token budget of it. A running request's chain then grows only as it decodes.
//! - **Running before waiting, then youngest first.** A running request that cannot grow,
//!   with no copies out of HBM pending (they free room by themselves), first takes back the
//!   half-grown chain of a waiting request (youngest first; those pages free at once), then
//!   preempts the youngest running request (itself, if it is the youngest).
//!
//! Why the oldest running request finishes: it is seated first in every step, so the budget
//! goes to its prefill first, and it is never a victim while another runs. A request admitted
//! meanwhile takes only free pages. Alone and still short (pages pinned by waiting requests'
//! paths or taken by copies into HBM), it preempts itself, nothing runs, and the progress rule
//! seats it as the head of the line. Taking back the waiting requests' pins too, while others ran, was tried: they staged
//! again before the next step formed and took the pages back, so nothing stepped, over and
//! over (fastlibra's evicted history going out to the host and coming back in turn).
//!
//! The loop this ends, seen with slora on an 8 MiB HBM in the wall-clock runtime: one long
//! request decoded while two younger ones that arrived together each needed 37 blocks where
//! 30 were free. Admitted on the 16 blocks of a first chunk, each computed it, could not grow
//! for the second, preempted itself and let the other in: 67 preemptions in a run of 9
//! requests, and as every step carried a doomed 256-token chunk, the decoding request made a
//! token per 150 ms and some requests were still unfinished after a 30 s drain.

use super::Engine;
use super::order::LineOrder;
use super::request::Phase;
use crate::outcome::{FailureReason, RequestOutcome};

/// One request's prefill chunk in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefillPart {
    /// The request.
    pub request: u64,
    /// Tokens computed now.
    pub new_tokens: u32,
    /// Tokens already in its KV cache before them.
    pub context_before: u32,
}

/// A compute step for the driver: run it, then report with `handle_step_done`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepCmd {
    /// Id to report back.
    pub id: u64,
    /// Prefill chunks.
    pub prefill: Vec<PrefillPart>,
    /// Sequences decoding one token each.
    pub decode_batch: u32,
    /// Sum of their context lengths.
    pub decode_context_tokens: u64,
    /// Per distinct adapter in the step: (rank, tokens).
    pub adapters: Vec<(u32, u32)>,
    /// Requests that sample a token in this step, in the order tokens must be reported.
    pub samples: Vec<u64>,
}

#[derive(Debug)]
pub(crate) struct StepInFlight {
    pub(crate) cmd: Option<StepCmd>,
    pub(crate) id: u64,
    pub(crate) issued_ns: u64,
    /// (slot, request id, tokens computed, samples a token)
    pub(crate) entries: Vec<(u32, u64, u32, bool)>,
}

impl Engine {
    pub(crate) fn form_step(&mut self) {
        if self.activation_pending() {
            return; // the model runner is loading adapters (synchronous policies)
        }
        let mut entries = Vec::new();
        let mut budget = self.config.prefill_token_budget;
        let mut seats = self.config.max_batch;
        self.seat_running(&mut entries, &mut budget, &mut seats);
        self.seat_ready(LineOrder::Service, &mut entries, &mut budget, &mut seats);
        if entries.is_empty() && self.running.is_empty() {
            self.make_way(&mut entries, &mut budget, &mut seats);
        }
        if entries.is_empty() {
            return;
        }
        self.set_wedged(false);
        let cmd = self.step_command(&entries);
        self.step = Some(StepInFlight {
            cmd: Some(cmd),
            id: self.next_step,
            issued_ns: self.now_ns,
            entries,
        });
        self.next_step += 1;
    }

    /// Running requests: decodes and unfinished prefills, oldest first. A request that cannot
    /// get a page takes back the half-grown chains of waiting requests, then preempts the
    /// youngest running request (possibly itself); see the module docs.
    fn seat_running(
        &mut self,
        entries: &mut Vec<(u32, u64, u32, bool)>,
        budget: &mut u32,
        seats: &mut u32,
    ) {
        let mut i = 0;
        while i < self.running.len() && *seats > 0 {
            let slot = self.running[i];
            let (phase, want) = {
                let r = &self.requests[slot as usize];
                (r.phase, r.tokens_to_compute())
            };
            let n = if phase == Phase::Decode {
                1
            } else {
                want.min(*budget)
            };
            if n == 0 {
                i += 1;
                continue;
            }
            if !self.grow_chain(slot, n) {
                if self.pending_out_pages > 0 {
                    // Pages are on their way out to the host: wait a step rather than throw
                    // work away.
                    i += 1;
                    continue;
                }
                // Running before waiting: a half-grown chain of a request not yet running goes
                // first; then the youngest running request (possibly this one).
                if !self.release_youngest_chain() {
                    let victim = *self.running.last().expect("not empty");
                    self.preempt(victim);
                }
                continue;
            }
            if phase != Phase::Decode {
                *budget -= n;
            }
            *seats -= 1;
            let r = &self.requests[slot as usize];
            let samples = phase == Phase::Decode || n == want;
            entries.push((slot, r.id, n, samples));
            i += 1;
        }
    }

    /// Ready requests in `order` (see [`super::order`]), while budget and seats last: the
    /// first that cannot get pages for its whole prefill stops admission, keeping what it got,
    /// so no one behind it in that order overtakes it. One with nothing to compute (an empty
    /// prompt) can never run and is passed over.
    pub(crate) fn seat_ready(
        &mut self,
        order: LineOrder,
        entries: &mut Vec<(u32, u64, u32, bool)>,
        budget: &mut u32,
        seats: &mut u32,
    ) {
        // Seating changes the line, so walk a copy of its order (in a buffer kept for reuse).
        let mut line = std::mem::take(&mut self.scratch_line);
        line.clear();
        line.extend(self.line_in(order));
        for &slot in &line {
            if *seats == 0 || *budget == 0 {
                break;
            }
            if self.requests[slot as usize].phase != Phase::Ready {
                continue;
            }
            let want = self.requests[slot as usize].tokens_to_compute();
            if want == 0 {
                continue;
            }
            // Blocks for the whole prefill, not just this chunk: a request admitted on its
            // first chunk alone may find no room for the next and throw the first away.
            if !self.grow_chain(slot, want) {
                break;
            }
            let n = want.min(*budget);
            let at = self.waiting.iter().position(|&s| s == slot);
            self.waiting
                .remove(at.expect("a ready request is in the line"));
            let seq = self.requests[slot as usize].seq;
            let at = self
                .running
                .partition_point(|&s| self.requests[s as usize].seq < seq);
            self.running.insert(at, slot);
            *budget -= n;
            *seats -= 1;
            let r = &mut self.requests[slot as usize];
            self.staged_pages -= u64::from(r.staged_pages);
            r.staged_pages = 0;
            r.phase = Phase::Prefill;
            entries.push((slot, r.id, n, n == want));
        }
        self.scratch_line = line;
    }

    fn step_command(&self, entries: &[(u32, u64, u32, bool)]) -> StepCmd {
        let mut prefill = Vec::new();
        let mut decode_batch = 0;
        let mut decode_context_tokens = 0;
        let mut adapters: Vec<(u32, u32, u32)> = Vec::new();
        let mut samples = Vec::new();
        for &(slot, id, n, sample) in entries {
            let r = &self.requests[slot as usize];
            if r.phase == Phase::Decode {
                decode_batch += 1;
                decode_context_tokens += u64::from(r.computed + 1);
            } else {
                prefill.push(PrefillPart {
                    request: id,
                    new_tokens: n,
                    context_before: r.computed,
                });
            }
            match adapters.iter_mut().find(|a| a.0 == r.adapter) {
                Some(a) => a.2 += n,
                None => {
                    adapters.push((r.adapter, self.config.adapters[r.adapter as usize].rank, n))
                }
            }
            if sample {
                samples.push(id);
            }
        }
        StepCmd {
            id: self.next_step,
            prefill,
            decode_batch,
            decode_context_tokens,
            adapters: adapters.into_iter().map(|(_, rank, n)| (rank, n)).collect(),
            samples,
        }
    }

    /// Makes sure the request's chain has blocks for `n` more tokens, inserting private blocks
    /// under its deepest node and moving its pin down. False if HBM has no room (room was
    /// requested).
    pub(crate) fn grow_chain(&mut self, slot: u32, n: u32) -> bool {
        let block_tokens = self.config.block_tokens;
        loop {
            let r = &self.requests[slot as usize];
            let needed = (r.computed + n).div_ceil(block_tokens);
            if r.chain_blocks >= needed {
                return true;
            }
            let parent = r.deepest.expect("a seated request holds its path");
            if !self.make_room(
                fastlibra_alloc::Tier::Hbm,
                self.config.pages_per_block,
                fastlibra_alloc::NodeKind::Kv,
                true,
            ) {
                return false;
            }
            let Ok(node) = self.tree.insert_kv(parent, None, self.now_ns) else {
                return false;
            };
            let pin = self.requests[slot as usize]
                .pin
                .expect("a seated request is pinned");
            self.tree
                .move_pin_down(pin, node)
                .expect("a fresh block sits in HBM right below the pinned node");
            let r = &mut self.requests[slot as usize];
            r.deepest = Some(node);
            r.chain_blocks += 1;
            r.private.push_back(node);
        }
    }

    pub(crate) fn step_done(
        &mut self,
        step: u64,
        tokens: &[u32],
    ) -> Result<(), super::EngineError> {
        let in_flight = match self.step.take() {
            Some(s) if s.id == step => s,
            other => {
                self.step = other;
                return Err(super::EngineError::BadStep(step));
            }
        };
        let sampled = in_flight.entries.iter().filter(|e| e.3).count();
        if sampled != tokens.len() {
            self.step = Some(in_flight);
            return Err(super::EngineError::BadStep(step));
        }
        let duration = self.now_ns - in_flight.issued_ns;
        let mut next_token = tokens.iter();
        let mut decoding = 0u32;
        for &(slot, id, n, sample) in &in_flight.entries {
            let live = self.requests.get(slot as usize).is_some_and(|r| r.id == id);
            let token = if sample {
                next_token.next().copied()
            } else {
                None
            };
            if !live {
                continue;
            }
            decoding += 1;
            self.advance_request(slot, n, token, duration);
        }
        self.stats.steps += 1;
        self.batch_size_avg = 0.9 * self.batch_size_avg + 0.1 * f64::from(decoding.max(1));
        Ok(())
    }

    fn advance_request(&mut self, slot: u32, n: u32, token: Option<u32>, duration: u64) {
        let now = self.now_ns;
        let r = &mut self.requests[slot as usize];
        if r.phase == Phase::Waiting || r.phase == Phase::Ready {
            return; // preempted after the step was formed; its work is discarded
        }
        r.computed += n;
        if r.phase == Phase::Prefill {
            r.prefill_ns += duration;
            r.prefill_tokens += n;
        }
        self.publish_blocks(slot);
        let Some(token) = token else { return };
        let r = &mut self.requests[slot as usize];
        r.tokens.push(token);
        r.generated += 1;
        r.first_token_ns.get_or_insert(now);
        r.phase = Phase::Decode;
        if r.is_done() {
            self.complete(slot);
        }
    }

    /// Publishes the request's blocks that are full and computed, so others can match them.
    fn publish_blocks(&mut self, slot: u32) {
        if !self.config.knobs.retain_kv {
            return;
        }
        let block_tokens = self.config.block_tokens;
        loop {
            let r = &self.requests[slot as usize];
            let next = r.published_blocks;
            if r.publish_broken || r.computed < (next + 1) * block_tokens {
                return;
            }
            let Some(&node) = r.private.front() else {
                return;
            };
            let range = (next * block_tokens) as usize..((next + 1) * block_tokens) as usize;
            let key = self
                .tree
                .next_block_key(r.adapter_ref, r.last_key, &r.tokens[range])
                .expect("a full block");
            let published = self.tree.publish(node, key).is_ok();
            let r = &mut self.requests[slot as usize];
            if published {
                r.private.pop_front();
                r.published_blocks += 1;
                r.last_key = Some(key);
            } else {
                // Another request published the same block first; the rest of this chain
                // stays private and is dropped when the request ends.
                r.publish_broken = true;
            }
        }
    }

    fn complete(&mut self, slot: u32) {
        let r = &self.requests[slot as usize];
        if let Some(session) = r.session {
            self.sessions.insert(session, r.tokens.clone());
        }
        self.emit(slot, None);
        self.release(slot);
    }

    /// Fails a request with `reason`, releasing whatever it holds.
    pub(crate) fn fail(&mut self, slot: u32, reason: FailureReason) {
        self.emit(slot, Some(reason));
        self.release(slot);
    }

    /// Takes the request out of every list and gives back its pins and private blocks.
    fn release(&mut self, slot: u32) {
        self.unhold(slot);
        if let Some(pos) = self.running.iter().position(|&s| s == slot) {
            self.running.remove(pos);
        }
        if let Some(pos) = self.waiting.iter().position(|&s| s == slot) {
            self.waiting.remove(pos);
        }
        self.requests.remove(slot as usize);
        self.note_memory_change();
    }

    /// Gives back the request's pin and drops its private blocks (all of its blocks when the
    /// policy keeps no history).
    pub(crate) fn unhold(&mut self, slot: u32) {
        let r = &mut self.requests[slot as usize];
        self.staged_pages -= u64::from(r.staged_pages);
        r.staged_pages = 0;
        let pin = r.pin.take();
        let first_private = r.private.front().copied();
        r.private.clear();
        r.deepest = None;
        r.chain_blocks = 0;
        if let Some(pin) = pin {
            self.tree.unpin(pin).expect("the request's pin is live");
        }
        if let Some(node) = first_private {
            self.tree
                .drop_subtree(node)
                .expect("private blocks are unpinned and never move");
        }
    }

    /// Preemption by recompute: the request gives back its pages and waits again, at its place
    /// in arrival order (ahead of everyone who came after it); its published blocks stay
    /// cached, so it recomputes only what is lost.
    fn preempt(&mut self, slot: u32) {
        self.stats.preemptions += 1;
        self.unhold(slot);
        if let Some(pos) = self.running.iter().position(|&s| s == slot) {
            self.running.remove(pos);
        }
        let r = &mut self.requests[slot as usize];
        r.preemptions += 1;
        r.phase = Phase::Waiting;
        r.computed = 0;
        r.published_blocks = 0;
        r.last_key = None;
        r.publish_broken = false;
        let (id, seq) = (r.id, r.seq);
        let at = self
            .waiting
            .partition_point(|&s| self.requests[s as usize].seq < seq);
        self.waiting.insert(at, slot);
        self.dirty.push_back((slot, id));
        self.note_memory_change();
    }

    /// Sends the youngest waiting request that holds a half-grown chain back to waiting, its
    /// chain dropped (its pages free at once) and its pins released. False if none holds one.
    fn release_youngest_chain(&mut self) -> bool {
        let holder = self
            .waiting
            .iter()
            .rfind(|&&s| !self.requests[s as usize].private.is_empty());
        let Some(&slot) = holder else {
            return false;
        };
        self.send_back(slot);
        true
    }

    fn emit(&mut self, slot: u32, failure: Option<FailureReason>) {
        let r = &self.requests[slot as usize];
        let finish = self.now_ns;
        let lora_ready = r.lora_ready_ns.unwrap_or(finish);
        let ready = r.ready_ns.unwrap_or(finish);
        let lora_cold_ns = if r.lora_hit {
            0
        } else {
            lora_ready - r.arrival_ns
        };
        let history_share = if r.prefill_tokens == 0 {
            0.0
        } else {
            f64::from(r.recompute_history_tokens.min(r.prefill_tokens))
                / f64::from(r.prefill_tokens)
        };
        let recompute_ns = (r.prefill_ns as f64 * history_share) as u64;
        let kv_cold_ns = ready.saturating_sub(lora_ready) + recompute_ns;
        let prefill_ns = r.prefill_ns - recompute_ns;
        let ttft = r.first_token_ns.map_or(0, |t| t - r.arrival_ns);
        self.outcomes.push_back(RequestOutcome {
            request: r.id,
            session: r.session,
            adapter: r.adapter,
            arrival_ns: r.arrival_ns,
            first_token_ns: r.first_token_ns,
            finish_ns: finish,
            prompt_tokens: r.prompt_len,
            output_tokens: r.generated,
            queue_ns: ttft.saturating_sub(lora_cold_ns + kv_cold_ns + prefill_ns),
            lora_cold_ns,
            kv_cold_ns,
            prefill_ns,
            lora_hit: r.lora_hit,
            kv_hit_blocks: r.kv_hit_blocks,
            kv_reusable_blocks: r.kv_reusable_blocks,
            preemptions: r.preemptions,
            failure,
        });
    }
}
