//! Token sampling, in one place every backend uses (CPU, CUDA, the runtime's shards).
//!
//! ```text
//!   SamplingParams ── validate ──► Sampler ── sample(logits) ──► SampledToken
//!   (temperature, top_k, top_p,      (ChaCha20 seeded per        (id, its log-probability,
//!    seed, max_tokens, stop,          request, one draw per       the top-n log-probabilities)
//!    stop_token_ids, logprobs)        token)
//!
//!   Generation = Sampler + Detokenizer + StopStrings + max_tokens
//!     step(tokenizer, logits) ──► Step { token, text to stream, finish: Stop | Length }
//! ```
//!
//! Sampling order: temperature scales the logits, top-k keeps the `k` most likely tokens,
//! top-p keeps the smallest most-likely set whose probability reaches `p`, then one uniform
//! draw picks from what is left by cumulative probability. Temperature 0 (or top-k 1) is
//! greedy: the most likely token, the lowest id on ties. Log-probabilities, when a request
//! asks for them, are the log-softmax of the raw logits, before temperature and truncation,
//! as OpenAI reports them. Nothing sorts the whole vocabulary: top-k and top-p select.

mod generation;
mod params;
mod rank;
mod sampler;
mod stop;

pub use generation::{FinishReason, Generation, Step};
pub use params::{
    LOGPROBS_MAX, STOP_STRING_BYTES_MAX, STOP_STRINGS_MAX, SamplingError, SamplingParams,
};
pub use sampler::{SampledToken, Sampler, TokenLogprob};
pub use stop::{StopCheck, StopStrings};
