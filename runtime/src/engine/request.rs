//! A request inside the engine: where it is in its life, what it holds in the tree, and the
//! times its TTFT breakdown is computed from.

use std::collections::VecDeque;

use fastlibra_alloc::{AdapterRef, NodeId, PinId};

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for its LoRA and history KV to be in HBM and pinned.
    Waiting,
    /// Its path is pinned in HBM; waiting for a batch slot.
    Ready,
    /// Prefilling (possibly over several chunks).
    Prefill,
    /// Generating tokens.
    Decode,
}

/// One request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) id: u64,
    /// Its place in arrival order (the engine's count of arrivals before it): the lower, the
    /// older. The running list and the waiting line are kept in this order.
    pub(crate) seq: u64,
    pub(crate) session: Option<u64>,
    pub(crate) adapter: u32,
    pub(crate) adapter_ref: AdapterRef,
    /// Prompt (history included) followed by the tokens generated so far.
    pub(crate) tokens: Vec<u32>,
    /// Chained keys of the full blocks of `tokens[..n]` under adapter version `a`, for the
    /// `(a, n)` in `keys_for`: evaluations while it waits match without hashing again.
    pub(crate) keys: Vec<u64>,
    pub(crate) keys_for: Option<(fastlibra_alloc::AdapterRef, usize)>,
    pub(crate) prompt_len: u32,
    pub(crate) max_new: u32,
    pub(crate) generated: u32,
    /// Tokens of earlier turns of the session at the front of the prompt.
    pub(crate) history_tokens: u32,
    pub(crate) phase: Phase,
    /// The node whose transfer this request waits for.
    pub(crate) waiting_on: Option<NodeId>,
    /// The pin on the deepest node of its chain that sits in HBM.
    pub(crate) pin: Option<PinId>,
    /// That node (the LoRA when no block is held yet).
    pub(crate) deepest: Option<NodeId>,
    /// Blocks in the chain down to `deepest`.
    pub(crate) chain_blocks: u32,
    /// Tokens whose KV is computed.
    pub(crate) computed: u32,
    /// Blocks of the chain whose keys are published (matched or published by this request).
    pub(crate) published_blocks: u32,
    /// Key of the last published block.
    pub(crate) last_key: Option<u64>,
    /// Blocks this request inserted and has not published, shallowest first.
    pub(crate) private: VecDeque<NodeId>,
    /// A block could not be published (a duplicate appeared); the rest stays private.
    pub(crate) publish_broken: bool,
    /// Tokens of this prefill that recompute session history.
    pub(crate) recompute_history_tokens: u32,
    /// Prefill tokens computed in all.
    pub(crate) prefill_tokens: u32,
    pub(crate) arrival_ns: u64,
    pub(crate) lora_ready_ns: Option<u64>,
    pub(crate) ready_ns: Option<u64>,
    pub(crate) first_token_ns: Option<u64>,
    /// Compute time of the steps that carried this request's prefill chunks.
    pub(crate) prefill_ns: u64,
    pub(crate) lora_hit: bool,
    pub(crate) kv_hit_blocks: u32,
    pub(crate) kv_reusable_blocks: u32,
    pub(crate) preemptions: u32,
    /// HBM pages of its pinned path counted as staged (while not yet running).
    pub(crate) staged_pages: u32,
    /// Whether the arrival-time hit statistics were taken.
    pub(crate) assessed: bool,
    /// Its latest evaluation found no room for the next node of its path (in the tier that
    /// node goes to, or within the staging share): it waits for memory, not for a transfer.
    pub(crate) short_of_room: bool,
    /// With synchronous adapter loads: the walk for the step being formed is evaluating this
    /// request, so it may load its adapter now (see [`super::activate`]). Set only during
    /// that evaluation.
    pub(crate) activating: bool,
}

impl Request {
    /// Tokens the next step must compute for it: the rest of the prompt (prefill) or one.
    pub(crate) fn tokens_to_compute(&self) -> u32 {
        match self.phase {
            Phase::Decode => 1,
            _ => self.prompt_len + self.generated.saturating_sub(1) - self.computed,
        }
    }

    /// Whether the next token it produces is its last.
    pub(crate) fn is_done(&self) -> bool {
        self.generated >= self.max_new
    }
}
