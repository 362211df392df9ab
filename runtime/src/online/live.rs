//! A shard's live requests: each one's sampler and stop conditions ([`Generation`]), the
//! channel its events go to, and its times. The shard's [`TokenChooser`] samples through this
//! table; the shard loop finishes requests through it when the engine reports their outcome.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use fastlibra_kernels::sampling::{FinishReason, Generation};
use fastlibra_kernels::tokenizer::Tokenizer;
use rustc_hash::FxHashMap;
use tokio::sync::mpsc::UnboundedSender;

use super::api::{TokenEvent, Usage};
use super::metrics::ShardMetrics;
use super::runtime::Counters;
use crate::outcome::RequestOutcome;
use crate::real::TokenChooser;
use crate::real::shard::BLOCK_TOKENS;

/// A request as it travels to its shard.
pub(crate) struct Submitted {
    pub(crate) id: u64,
    pub(crate) adapter: u32,
    pub(crate) prompt: Vec<u32>,
    pub(crate) generation: Generation,
    pub(crate) max_tokens: u32,
    pub(crate) events: UnboundedSender<TokenEvent>,
    /// Set when the client dropped the stream (checked when the request arrives, in case
    /// the cancel overtook it).
    pub(crate) cancelled: Arc<AtomicBool>,
    pub(crate) submitted: Instant,
}

/// One live request on its shard.
struct Live {
    adapter: u32,
    prompt_tokens: u32,
    generation: Generation,
    events: UnboundedSender<TokenEvent>,
    submitted: Instant,
    last_token: Option<Instant>,
    generated: u32,
    /// Set when sampling failed or the client is gone: the request ends with that message.
    failed: Option<String>,
    /// The client dropped its stream (the request counts as cancelled).
    gone: bool,
}

/// The live requests of one shard, and its metrics (the two change together).
pub(crate) struct LiveTable {
    requests: FxHashMap<u64, Live>,
    pub(crate) metrics: ShardMetrics,
    tokenizer: Arc<Tokenizer>,
    counters: Arc<Counters>,
    shard: usize,
}

/// The table as the shard loop and the chooser share it (one thread).
pub(crate) type SharedTable = Rc<RefCell<LiveTable>>;

impl LiveTable {
    pub(crate) fn new(tokenizer: Arc<Tokenizer>, counters: Arc<Counters>, shard: usize) -> Self {
        LiveTable {
            requests: FxHashMap::default(),
            metrics: ShardMetrics::default(),
            tokenizer,
            counters,
            shard,
        }
    }

    /// Requests held.
    pub(crate) fn len(&self) -> usize {
        self.requests.len()
    }

    /// Takes in a request that arrived; returns false (and releases its count) if it was
    /// cancelled on the way.
    pub(crate) fn admit(&mut self, s: Submitted) -> bool {
        if s.cancelled.load(Ordering::Acquire) {
            self.counters.leave(self.shard, true);
            self.metrics.requests_cancelled += 1;
            return false;
        }
        self.requests.insert(
            s.id,
            Live {
                adapter: s.adapter,
                prompt_tokens: s.prompt.len() as u32,
                generation: s.generation,
                events: s.events,
                submitted: s.submitted,
                last_token: None,
                generated: 0,
                failed: None,
                gone: false,
            },
        );
        true
    }

    /// The client dropped request `id`'s stream: forget it. Returns whether it was held.
    pub(crate) fn cancel(&mut self, id: u64) -> bool {
        let Some(live) = self.requests.remove(&id) else {
            return false;
        };
        self.counters.leave(self.shard, live.last_token.is_none());
        self.metrics.requests_cancelled += 1;
        self.metrics.generation_tokens += u64::from(live.generated);
        true
    }

    /// The engine reported `outcome`: the request's last event goes out.
    pub(crate) fn finish(&mut self, outcome: &RequestOutcome) {
        let Some(live) = self.requests.remove(&outcome.request) else {
            return; // cancelled meanwhile
        };
        let now = Instant::now();
        self.counters.leave(self.shard, live.last_token.is_none());
        let m = &mut self.metrics;
        if live.gone {
            m.requests_cancelled += 1;
        } else {
            m.requests_finished += 1;
        }
        m.generation_tokens += u64::from(live.generated);
        m.e2e
            .observe(now.duration_since(live.submitted).as_secs_f64());
        let event = match (&live.failed, &outcome.failure) {
            (Some(message), _) => TokenEvent::Failed {
                message: message.clone(),
            },
            (None, Some(reason)) => TokenEvent::Failed {
                message: format!("the runtime could not serve the request: {reason}"),
            },
            (None, None) => {
                let cached = (outcome.kv_reusable_blocks * BLOCK_TOKENS).min(live.prompt_tokens);
                m.prompt_tokens += u64::from(live.prompt_tokens);
                m.prefix_cache_queries += u64::from(live.prompt_tokens);
                m.prefix_cache_hits += u64::from(cached);
                TokenEvent::Done {
                    finish: live.generation.finished().unwrap_or(FinishReason::Length),
                    usage: Usage {
                        prompt_tokens: live.prompt_tokens,
                        completion_tokens: live.generated,
                        cached_tokens: cached,
                    },
                }
            }
        };
        let _ = live.events.send(event);
    }

    /// Ends every request with `message` (the shard failed or the drain's deadline passed);
    /// returns how many.
    pub(crate) fn fail_all(&mut self, message: &str) -> u64 {
        let ids: Vec<u64> = self.requests.keys().copied().collect();
        for &id in &ids {
            if let Some(live) = self.requests.remove(&id) {
                self.counters.leave(self.shard, live.last_token.is_none());
                self.metrics.requests_cancelled += 1;
                self.metrics.generation_tokens += u64::from(live.generated);
                let _ = live.events.send(TokenEvent::Failed {
                    message: message.to_string(),
                });
            }
        }
        ids.len() as u64
    }

    /// The shard stopped serving for `why`: the front refuses its new requests from now on.
    pub(crate) fn shard_failed(&self, why: &str) {
        self.counters.fail(self.shard, why.to_string());
    }

    /// Ends a request that arrived after the shard stopped serving, with `message`.
    pub(crate) fn refuse(&mut self, s: Submitted, message: &str) {
        self.counters.leave(self.shard, true);
        self.metrics.requests_cancelled += 1;
        let _ = s.events.send(TokenEvent::Failed {
            message: message.to_string(),
        });
    }

    /// Ids of the requests held.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.requests.keys().copied().collect()
    }

    /// Adapter ids of requests that have produced a token, and of those that have not.
    pub(crate) fn adapters(&self) -> (Vec<u32>, Vec<u32>) {
        let mut running = Vec::new();
        let mut waiting = Vec::new();
        for live in self.requests.values() {
            if live.last_token.is_some() {
                running.push(live.adapter);
            } else {
                waiting.push(live.adapter);
            }
        }
        (running, waiting)
    }

    fn choose(&mut self, request: u64, logits: &[f32]) -> (u32, bool) {
        let Some(live) = self.requests.get_mut(&request) else {
            return (0, true); // not held: nothing to compute for
        };
        if live.failed.is_some() {
            return (0, true);
        }
        let step = match live.generation.step(&self.tokenizer, logits) {
            Ok(step) => step,
            Err(e) => {
                live.failed = Some(format!("sampling failed: {e}"));
                return (0, true);
            }
        };
        let now = Instant::now();
        match live.last_token {
            None => {
                self.counters.started(self.shard);
                let ttft = now.duration_since(live.submitted).as_secs_f64();
                self.metrics.ttft.observe(ttft);
            }
            Some(last) => {
                let itl = now.duration_since(last).as_secs_f64();
                self.metrics.inter_token.observe(itl);
            }
        }
        live.last_token = Some(now);
        live.generated += 1;
        let token = step.token.id;
        let ends = step.finish.is_some();
        if live.events.send(TokenEvent::Token(step)).is_err() {
            // The client is gone; its cancel is on its way. Stop computing for it now.
            live.failed = Some("the client went away".into());
            live.gone = true;
            return (token, true);
        }
        (token, ends)
    }
}

/// The shard's chooser: samples through the live table.
pub(crate) struct Chooser(pub(crate) SharedTable);

impl TokenChooser for Chooser {
    fn choose(&mut self, request: u64, logits: &[f32]) -> (u32, bool) {
        self.0.borrow_mut().choose(request, logits)
    }
}
