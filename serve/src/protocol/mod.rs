//! Request and response bodies, mirroring the OpenAI schema (and vLLM's LoRA endpoints).
//!
//! Requests accept what the official clients send: unknown fields are ignored, as vLLM does;
//! a known field of the wrong type is an error naming it.

mod chat;
mod common;
mod completions;
mod models;

pub use chat::{
    ChatChoice, ChatChunk, ChatChunkChoice, ChatContent, ChatContentPart, ChatDelta, ChatLogprob,
    ChatLogprobs, ChatMessageIn, ChatMessageOut, ChatRequest, ChatResponse, ChatTopLogprob,
};
pub use common::{ErrorBody, ErrorDetail, Stop, StreamOptions, UsageBody, UsageDetails};
pub use completions::{
    CompletionChoice, CompletionChunk, CompletionLogprobs, CompletionRequest, CompletionResponse,
    Prompt,
};
pub use models::{LoadLoraRequest, ModelCard, ModelList, UnloadLoraRequest};
