//! The HTTP front of `fastlibra serve`: the OpenAI Completions and Chat APIs (streamed by
//! server-sent events), vLLM's LoRA endpoints and its metric names, over any
//! [`ServeBackend`](fastlibra_runtime::online::ServeBackend).
//!
//! Split as TGI's router is, each part small:
//!
//! ```text
//!  bytes ─► limits (size, time) ─► auth ─► parse (protocol types, 400 per field)
//!        ─► validate (model → adapter, template + tokens, budget, sampling)
//!        ─► bridge (slot or 429, submit or 404/503) ─► RequestStream
//!        ─► plain JSON answer, or sse chunks … [DONE]
//!  /metrics ◄─ metrics (what the front times) + metrics_runtime (the runtime's snapshot)
//!  SIGTERM ─► lifecycle: refuse new requests, drain the runtime, close connections
//! ```
//!
//! Every failure is an [`ApiError`]: one HTTP status and an OpenAI-style body
//! `{"error": {"message", "type", "param", "code"}}`.

pub mod auth;
pub mod bridge;
pub mod error;
pub mod fuzz_entry;
pub mod lifecycle;
pub mod limits;
pub mod logprobs;
pub mod metrics;
pub mod metrics_runtime;
pub mod options;
pub mod parse;
pub mod protocol;
pub mod routes;
pub mod server;
pub mod sse;
pub mod state;
pub mod template;
pub mod token_ids;
pub mod validate;

#[cfg(test)]
mod tests;

pub use error::ApiError;
pub use options::FrontOptions;
pub use server::{ServeError, Server, start};
