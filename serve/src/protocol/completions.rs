//! `POST /v1/completions`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{Stop, StreamOptions, UsageBody};

/// `prompt`: text or token ids, alone or in a list (a list must hold exactly one prompt).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text.
    Text(String),
    /// Token ids.
    Tokens(Vec<u32>),
    /// Texts (batched prompts).
    Texts(Vec<String>),
    /// Lists of token ids (batched prompts).
    TokenLists(Vec<Vec<u32>>),
}

/// A completion request (the fields fastlibra reads; others are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CompletionRequest {
    /// The base model's served name or an adapter's.
    pub model: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Most tokens to generate (OpenAI's and vLLM's default: 16).
    pub max_tokens: Option<u32>,
    /// Softmax temperature (default 1).
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (default 1).
    pub top_p: Option<f32>,
    /// Keep the k most likely tokens; 0 or -1 keep all (vLLM's convention).
    pub top_k: Option<i64>,
    /// Seed of the request's random stream.
    pub seed: Option<i64>,
    /// Stop strings.
    pub stop: Option<Stop>,
    /// Token ids that stop the generation (vLLM's extension).
    pub stop_token_ids: Option<Vec<u32>>,
    /// Stream by server-sent events.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Report the chosen token's log-probability and this many alternatives (0..=20).
    pub logprobs: Option<u32>,
    /// Completions per prompt; only 1 is supported.
    pub n: Option<u32>,
    /// Return the prompt before the completion (not supported).
    pub echo: Option<bool>,
    /// Candidates per completion (not supported above 1).
    pub best_of: Option<u32>,
    /// Also return the prompt's and the completion's token ids (vLLM's extension).
    pub return_token_ids: Option<bool>,
}

/// A completion answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompletionResponse {
    /// `cmpl-…`.
    pub id: String,
    /// `text_completion`.
    pub object: &'static str,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The `model` asked for.
    pub model: String,
    /// One choice.
    pub choices: Vec<CompletionChoice>,
    /// Token counts.
    pub usage: UsageBody,
}

/// One completion (or, streamed, one piece of it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompletionChoice {
    /// Always 0 (n = 1).
    pub index: u32,
    /// The text.
    pub text: String,
    /// Log-probabilities, when asked.
    pub logprobs: Option<CompletionLogprobs>,
    /// `stop` or `length`; null in a streamed piece before the last.
    pub finish_reason: Option<&'static str>,
    /// With `return_token_ids`: the prompt's token ids (streamed: in the first chunk only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_token_ids: Option<Vec<u32>>,
    /// With `return_token_ids`: the generated token ids (streamed: this chunk's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// The legacy completions log-probability format.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompletionLogprobs {
    /// Each generated token's text.
    pub tokens: Vec<String>,
    /// Each one's log-probability.
    pub token_logprobs: Vec<Option<f32>>,
    /// The most likely alternatives at each position, text to log-probability.
    pub top_logprobs: Vec<BTreeMap<String, f32>>,
    /// Each token's byte offset in the completion text.
    pub text_offset: Vec<usize>,
}

/// A streamed completion chunk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompletionChunk {
    /// Same for every chunk of a request.
    pub id: String,
    /// `text_completion`.
    pub object: &'static str,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The `model` asked for.
    pub model: String,
    /// The piece; empty in the usage chunk.
    pub choices: Vec<CompletionChoice>,
    /// Only in the last chunk, with `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBody>,
}
