//! The serving runtime's interface: what `fastlibra serve`'s HTTP front asks of the shards.
//!
//! ```text
//!  HTTP front (tokio)                               serving runtime (glommio shards)
//!  ──────────────────                               ────────────────────────────────
//!  validate, tokenise, template ─ GenerateRequest ─► submit() ─► route by adapter ─► shard
//!  stream chunks / final body  ◄─ TokenEvent … ────  RequestStream ◄─ tokens as sampled
//!  client gone: drop stream    ─────────────────────► cancel: pins released at once
//!  /v1/load_lora_adapter       ─────────────────────► load_adapter (new name or new version)
//!  /metrics                    ◄──── snapshot() ────  gauges and counters of every shard
//!  SIGTERM                     ─────────────────────► drain(deadline)
//! ```
//!
//! The front validates every field and the token budget before it calls [`ServeBackend::submit`];
//! the runtime still refuses what it cannot take ([`SubmitError`]) rather than trusting it.
//! Everything here is `Send + Sync`: the front calls it from any thread, and the calls that
//! read files ([`ServeBackend::load_adapter`]) or wait ([`ServeBackend::drain`]) block, so the
//! front runs them off its async threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fastlibra_kernels::sampling::{FinishReason, SamplingParams, Step};
use fastlibra_kernels::tokenizer::Tokenizer;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::PolicyKind;
use crate::real::device::DeviceChoice;

/// How to start the serving runtime (the flags of `fastlibra serve` that reach the shards).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The checkpoint: a `.gguf` file or a Hugging Face folder.
    pub model: PathBuf,
    /// The name the base model is served under; `None`: the checkpoint's file or folder name.
    pub served_model_name: Option<String>,
    /// Adapters to load at start-up: (name, PEFT folder).
    pub lora_modules: Vec<(String, PathBuf)>,
    /// vLLM's `max_loras`, reported as `max_lora` in `vllm:lora_requests_info` (what a
    /// router reads to judge whether an adapter fits). It bounds nothing here: adapters in HBM
    /// are bounded by pages (the unified pool, or the static LoRA share of `vllm` and
    /// `vllm-async`), not by count.
    pub max_loras: u32,
    /// Most LoRA rank accepted (vLLM's `max_lora_rank`).
    pub max_lora_rank: u32,
    /// For `vllm` and `vllm-async`: vLLM's `max_cpu_loras`. Host memory and HBM together
    /// cache at most this many adapters plus one, the base model's own (adapter 0) counted
    /// among them like any other; the rest wait in the NVMe tier and are read back (least
    /// recently used out first) when a request needs them. `None`, or another policy: as
    /// many as the host tier holds.
    pub max_cpu_loras: Option<u32>,
    /// Longest prompt plus completion, tokens; `None`: the checkpoint's context length.
    pub max_model_len: Option<u32>,
    /// Most sequences in one step, per shard (vLLM's `max_num_seqs`).
    pub max_num_seqs: u32,
    /// Most requests waiting for admission over all shards; more are refused
    /// ([`SubmitError::Overloaded`]), so memory stays bounded.
    pub max_waiting: u32,
    /// The device each shard computes on.
    pub device: DeviceChoice,
    /// Shards, one glommio executor pinned per core.
    pub shards: u32,
    /// Bytes of the HBM, host and NVMe tiers of each shard.
    pub tier_bytes: [u64; 3],
    /// Folder of the NVMe tier's page files; `None`: a temporary folder removed at exit.
    pub spill_dir: Option<PathBuf>,
    /// The cache policy.
    pub policy: PolicyKind,
}

/// What the runtime serves, for validation, `/v1/models` and the metrics' info gauges.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The base model's served name.
    pub served_name: String,
    /// The checkpoint it was loaded from.
    pub path: PathBuf,
    /// The checkpoint's tokenizer and chat template.
    pub tokenizer: Arc<Tokenizer>,
    /// Longest prompt plus completion, tokens.
    pub max_model_len: u32,
    /// Tokens per KV block (vLLM's `block_size`).
    pub block_tokens: u32,
    /// HBM pages over all shards (vLLM's `num_gpu_blocks`).
    pub hbm_pages: u64,
    /// Most adapters in HBM at once.
    pub max_loras: u32,
    /// Most LoRA rank accepted.
    pub max_lora_rank: u32,
    /// Seconds since the Unix epoch when the runtime started (`/v1/models`' `created`).
    pub created_unix_s: u64,
}

/// One generation, validated and tokenised by the front.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    /// The adapter's served name; `None` for the base model.
    pub adapter: Option<String>,
    /// The whole prompt as token ids (a chat's whole conversation, rendered by its template).
    pub prompt: Vec<u32>,
    /// Sampling and stopping (`max_tokens` included).
    pub params: SamplingParams,
}

/// Token counts of a finished request (OpenAI's `usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens (stop tokens included, as OpenAI counts them).
    pub completion_tokens: u32,
    /// Prompt tokens whose KV came from the cache instead of being computed.
    pub cached_tokens: u32,
}

/// What a request's stream carries, in order: zero or more `Token`s, then exactly one `Done`
/// or `Failed`, then the end of the stream.
#[derive(Clone, Debug)]
pub enum TokenEvent {
    /// One sampled token: its id, log-probabilities (when asked) and the text to stream now.
    Token(Step),
    /// The request ended normally.
    Done {
        /// Why it ended.
        finish: FinishReason,
        /// Its token counts.
        usage: Usage,
    },
    /// The request failed inside the runtime; nothing more will come.
    Failed {
        /// What went wrong, for the client.
        message: String,
    },
}

/// A submitted request's events. Dropping it before `Done`/`Failed` cancels the request: the
/// runtime stops computing it and releases its pins at once.
pub struct RequestStream {
    id: u64,
    events: UnboundedReceiver<TokenEvent>,
    cancel: Option<Box<dyn FnOnce() + Send>>,
}

impl RequestStream {
    /// A stream of `events` for request `id`; `cancel` runs if it is dropped unfinished.
    pub fn new(
        id: u64,
        events: UnboundedReceiver<TokenEvent>,
        cancel: impl FnOnce() + Send + 'static,
    ) -> RequestStream {
        RequestStream {
            id,
            events,
            cancel: Some(Box::new(cancel)),
        }
    }

    /// The request's id (unique within the process).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next event; `None` after the last one.
    pub async fn next(&mut self) -> Option<TokenEvent> {
        let event = self.events.recv().await;
        if matches!(
            event,
            None | Some(TokenEvent::Done { .. } | TokenEvent::Failed { .. })
        ) {
            self.cancel = None;
        }
        event
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
    }
}

impl std::fmt::Debug for RequestStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStream")
            .field("id", &self.id)
            .field("finished", &self.cancel.is_none())
            .finish()
    }
}

/// Why a request was not taken.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// No adapter of that name is loaded (HTTP 404, as vLLM answers).
    #[error("the model `{0}` does not exist")]
    UnknownAdapter(String),
    /// Prompt plus `max_tokens` exceed the context (HTTP 400).
    #[error(
        "this model's maximum context length is {max_model_len} tokens; the prompt has \
         {prompt_tokens} and max_tokens asks for {max_tokens}"
    )]
    TooLong {
        /// Prompt tokens.
        prompt_tokens: u32,
        /// Tokens asked for.
        max_tokens: u32,
        /// The limit.
        max_model_len: u32,
    },
    /// A field the runtime cannot use (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// Too many requests waiting (HTTP 503 with `Retry-After`).
    #[error("the server is overloaded: {waiting} requests are waiting; retry in {retry_after_s} s")]
    Overloaded {
        /// Requests waiting now.
        waiting: u64,
        /// Suggested wait, seconds.
        retry_after_s: u32,
    },
    /// The runtime is draining or stopped (HTTP 503).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The shard this request routes to has stopped serving (it panicked or its engine
    /// failed); HTTP 503.
    #[error("shard {shard}, which serves this model, has stopped serving: {reason}")]
    ShardFailed {
        /// The shard.
        shard: u32,
        /// Why it stopped.
        reason: String,
    },
}

/// Why an adapter could not be loaded or unloaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AdapterError {
    /// No adapter of that name is loaded (HTTP 404).
    #[error("no adapter named `{0}` is loaded")]
    NotFound(String),
    /// The name is the base model's, empty, or otherwise unusable (HTTP 400).
    #[error("`{name}` cannot name an adapter: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Why not.
        reason: String,
    },
    /// The folder is missing, not a PEFT adapter, or does not fit the base model (HTTP 400);
    /// nothing was registered.
    #[error("{path}: {reason}")]
    Invalid {
        /// The folder given.
        path: PathBuf,
        /// What is wrong, naming the file and field.
        reason: String,
    },
    /// The runtime failed or is shutting down (HTTP 500/503).
    #[error("{0}")]
    Runtime(String),
}

/// A loaded adapter, as `/v1/models` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterListing {
    /// Its served name (the `model` field that selects it).
    pub name: String,
    /// The PEFT folder it was loaded from.
    pub path: PathBuf,
    /// 1 for the first load of the name, +1 for each reload with new weights; KV computed under
    /// an older version is never served under a newer one.
    pub version: u32,
    /// Its LoRA rank.
    pub rank: u32,
    /// Seconds since the Unix epoch when this version was loaded.
    pub created_unix_s: u64,
}

/// A histogram of durations: counts per upper bound (seconds, ascending; the last bound is
/// `+Inf`), with the sum and count, as Prometheus keeps one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DurationHistogram {
    /// Upper bounds of the buckets, seconds, ascending (not cumulative counts).
    pub bounds_s: Vec<f64>,
    /// Observations per bucket (not cumulative), `bounds_s.len() + 1` entries: the last counts
    /// those above every bound.
    pub counts: Vec<u64>,
    /// Sum of all observations, seconds.
    pub sum_s: f64,
}

/// Pages of one tier, by what they hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierPages {
    /// Pages of the tier over all shards.
    pub total: u64,
    /// Pages holding adapter weights.
    pub lora: u64,
    /// Pages holding KV blocks.
    pub kv: u64,
}

/// The runtime's state and counters over all shards, for `/metrics`. Gauges are as of the
/// shards' last publication (at most about 100 ms old); counters only grow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeSnapshot {
    /// Requests in a batch (prefill or decode).
    pub running: u64,
    /// Requests waiting for admission (queued, or waiting for their pages).
    pub waiting: u64,
    /// Adapters of running requests (served names).
    pub running_adapters: Vec<String>,
    /// Adapters of waiting requests (served names).
    pub waiting_adapters: Vec<String>,
    /// Pages of the HBM, host and NVMe tiers.
    pub pages: [TierPages; 3],
    /// Tree nodes (adapters and KV blocks) pinned by requests, or above a pinned node; 0 when
    /// the server is idle. (Named for pages; the tree counts pinned nodes, not pages.)
    pub pinned_hbm_pages: u64,
    /// Share of HBM KV pages whose adapter is not in HBM (unusable), 0..=1.
    pub invalid_kv_share: f64,
    /// Bytes moved per link: host→HBM, HBM→host, NVMe→host, host→NVMe.
    pub link_bytes: [u64; 4],
    /// Nodes swapped into HBM.
    pub swap_ins: u64,
    /// Nodes swapped out of HBM.
    pub swap_outs: u64,
    /// NVMe pages that failed their checksum on read (never served).
    pub nvme_checksum_failures: u64,
    /// Prompt tokens looked up in the prefix cache (vLLM's `prefix_cache_queries`).
    pub prefix_cache_queries: u64,
    /// Of those, tokens found cached (vLLM's `prefix_cache_hits`).
    pub prefix_cache_hits: u64,
    /// Requests preempted (their KV recomputed later).
    pub preemptions: u64,
    /// Wall time of each engine call on the shards.
    pub engine_call: DurationHistogram,
    /// Prompt tokens of finished requests (vLLM's `prompt_tokens`).
    pub prompt_tokens: u64,
    /// Tokens generated (vLLM's `generation_tokens`), cancelled requests' included.
    pub generation_tokens: u64,
    /// Requests that ended with `Done` or `Failed`.
    pub requests_finished: u64,
    /// Requests cancelled (their stream dropped early, or cut by a drain's deadline).
    pub requests_cancelled: u64,
    /// Time to first token, from `submit` (vLLM's `time_to_first_token_seconds`).
    pub time_to_first_token: DurationHistogram,
    /// Time between consecutive tokens of a request (vLLM's `inter_token_latency_seconds`).
    pub inter_token_latency: DurationHistogram,
    /// Time from `submit` to the last event (vLLM's `e2e_request_latency_seconds`).
    pub e2e_request_latency: DurationHistogram,
    /// Invariant checks run on idle shards, and how many failed (must stay 0).
    pub invariant_checks: u64,
    /// Invariant checks that failed.
    pub invariant_failures: u64,
    /// Per shard, whether it still serves (false once it panicked or its engine failed).
    pub shards_serving: Vec<bool>,
}

/// What a drain left behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Requests that finished during the drain.
    pub finished: u64,
    /// Requests still running at the deadline, cancelled.
    pub cancelled: u64,
}

/// The serving runtime as the HTTP front sees it.
pub trait ServeBackend: Send + Sync + 'static {
    /// What is served.
    fn model(&self) -> &ModelInfo;

    /// `Ok` while every part of the runtime serves; otherwise what stopped (a shard that
    /// panicked): `/health` then answers 503.
    fn health(&self) -> Result<(), String>;

    /// Queues a generation; its events arrive on the returned stream.
    fn submit(&self, request: GenerateRequest) -> Result<RequestStream, SubmitError>;

    /// Loads the PEFT adapter in `path` as `name` (blocks while it reads and checks the
    /// files). A name already loaded gets the new weights as a new version; requests already
    /// running keep the version they started with. Nothing is registered on an error.
    fn load_adapter(&self, name: &str, path: &Path) -> Result<AdapterListing, AdapterError>;

    /// Unloads `name`: new requests for it are refused; running ones finish first.
    fn unload_adapter(&self, name: &str) -> Result<(), AdapterError>;

    /// The adapters loaded now, in load order.
    fn adapters(&self) -> Vec<AdapterListing>;

    /// Gauges and counters of every shard.
    fn snapshot(&self) -> RuntimeSnapshot;

    /// Stops taking requests, lets those in flight finish until `deadline`, cancels the rest,
    /// and stops the shards (blocks). Later calls of [`ServeBackend::submit`] get
    /// [`SubmitError::ShuttingDown`].
    fn drain(&self, deadline: Duration) -> DrainReport;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn dropping_an_unfinished_stream_cancels_it_and_a_finished_one_does_not() {
        let cancelled = Arc::new(AtomicBool::new(false));
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let flag = cancelled.clone();
        drop(RequestStream::new(1, rx, move || {
            flag.store(true, Ordering::SeqCst)
        }));
        assert!(
            cancelled.load(Ordering::SeqCst),
            "an unfinished stream cancels on drop"
        );

        let cancelled = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let flag = cancelled.clone();
        let mut stream = RequestStream::new(2, rx, move || flag.store(true, Ordering::SeqCst));
        tx.send(TokenEvent::Done {
            finish: FinishReason::Stop,
            usage: Usage::default(),
        })
        .unwrap();
        let event = futures_lite::future::block_on(stream.next());
        assert!(matches!(event, Some(TokenEvent::Done { .. })));
        drop(stream);
        assert!(
            !cancelled.load(Ordering::SeqCst),
            "a finished stream does not cancel"
        );
    }
}
