//! `POST /v1/chat/completions`.

use serde::{Deserialize, Serialize};

use super::common::{Stop, StreamOptions, UsageBody};

/// A chat request (the fields fastlibra reads; others are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChatRequest {
    /// The base model's served name or an adapter's.
    pub model: String,
    /// The whole conversation.
    pub messages: Vec<ChatMessageIn>,
    /// Most tokens to generate (deprecated name).
    pub max_tokens: Option<u32>,
    /// Most tokens to generate; default: what the context leaves.
    pub max_completion_tokens: Option<u32>,
    /// Softmax temperature (default 1).
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (default 1).
    pub top_p: Option<f32>,
    /// Keep the k most likely tokens; 0 or -1 keep all.
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
    /// Report each token's log-probability.
    pub logprobs: Option<bool>,
    /// And this many alternatives (0..=20; needs `logprobs`).
    pub top_logprobs: Option<u32>,
    /// Completions per request; only 1 is supported.
    pub n: Option<u32>,
    /// Also return the prompt's and the answer's token ids (vLLM's extension).
    pub return_token_ids: Option<bool>,
}

/// One message in.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChatMessageIn {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// Text, or a list of text parts; null for none.
    pub content: Option<ChatContent>,
}

/// A message's content.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ChatContent {
    /// Plain text.
    Text(String),
    /// Parts; only `{"type": "text", "text": …}` is supported.
    Parts(Vec<ChatContentPart>),
}

/// One content part.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChatContentPart {
    /// The part's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its text, for `text` parts.
    pub text: Option<String>,
}

/// A chat answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatResponse {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: &'static str,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The `model` asked for.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: UsageBody,
    /// With `return_token_ids`: the prompt's token ids (streamed: in the first chunk only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_token_ids: Option<Vec<u32>>,
}

/// The answer's message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The assistant's message.
    pub message: ChatMessageOut,
    /// Log-probabilities, when asked.
    pub logprobs: Option<ChatLogprobs>,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// With `return_token_ids`: the generated token ids (streamed: this chunk's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// A message out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatMessageOut {
    /// `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// Chat log-probabilities.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Vec<ChatLogprob>,
}

/// One token's log-probability and alternatives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
    /// The most likely tokens at this position.
    pub top_logprobs: Vec<ChatTopLogprob>,
}

/// One alternative.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatTopLogprob {
    /// Its text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
}

/// A streamed chat chunk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatChunk {
    /// Same for every chunk of a request.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The `model` asked for.
    pub model: String,
    /// The piece; empty in the usage chunk.
    pub choices: Vec<ChatChunkChoice>,
    /// Only in the last chunk, with `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBody>,
    /// With `return_token_ids`: the prompt's token ids (streamed: in the first chunk only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_token_ids: Option<Vec<u32>>,
}

/// A piece of the message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What is new.
    pub delta: ChatDelta,
    /// Log-probabilities of this piece's token, when asked.
    pub logprobs: Option<ChatLogprobs>,
    /// Set in the last piece.
    pub finish_reason: Option<&'static str>,
    /// With `return_token_ids`: the generated token ids (streamed: this chunk's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// What a chunk adds to the message.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatDelta {
    /// `assistant`, in the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}
