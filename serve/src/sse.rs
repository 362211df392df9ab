//! Server-sent events: one `data:` chunk per piece of text, a last chunk with the finish
//! reason, a usage chunk when asked (`stream_options.include_usage`), then `data: [DONE]`.
//! The response body owns the request: when the client goes away, hyper drops the body, the
//! body drops the [`Running`] request, and the runtime cancels it.

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use fastlibra_kernels::sampling::{FinishReason, Step};
use fastlibra_runtime::online::{TokenEvent, Usage};
use futures_util::Stream;
use serde::Serialize;

use crate::bridge::Running;
use crate::error::ApiError;

/// How one endpoint writes its chunks.
pub trait Chunks: Send + 'static {
    /// The chunk sent before any token (chat's role), if any.
    fn first(&mut self) -> Option<String>;
    /// The chunk of one token, or `None` when it adds nothing to send.
    fn token(&mut self, step: &Step) -> Option<String>;
    /// The chunk that carries the finish reason.
    fn finish(&mut self, finish: FinishReason) -> String;
    /// The usage chunk (no choices).
    fn usage(&mut self, usage: Usage) -> String;
}

/// Serialises a chunk (plain data types: serialisation cannot fail).
pub fn json<T: Serialize>(chunk: &T) -> String {
    serde_json::to_string(chunk).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

enum Phase {
    Start,
    Tokens,
    Usage(Usage),
    Done,
    End,
}

struct State<C> {
    running: Running,
    chunks: C,
    phase: Phase,
}

/// The event stream of `running`, written by `chunks`.
pub fn stream<C: Chunks>(
    running: Running,
    chunks: C,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let state = State {
        running,
        chunks,
        phase: Phase::Start,
    };
    Sse::new(futures_util::stream::unfold(state, |mut s| async move {
        let data = next_data(&mut s).await?;
        Some((Ok(Event::default().data(data)), s))
    }))
}

async fn next_data<C: Chunks>(s: &mut State<C>) -> Option<String> {
    loop {
        match std::mem::replace(&mut s.phase, Phase::Tokens) {
            Phase::Start => {
                if let Some(first) = s.chunks.first() {
                    return Some(first);
                }
            }
            Phase::Tokens => match s.running.next().await {
                Some(TokenEvent::Token(step)) => {
                    if let Some(chunk) = s.chunks.token(&step) {
                        return Some(chunk);
                    }
                }
                Some(TokenEvent::Done { finish, usage }) => {
                    s.phase = if s.running.validated.include_usage {
                        Phase::Usage(usage)
                    } else {
                        Phase::Done
                    };
                    return Some(s.chunks.finish(finish));
                }
                Some(TokenEvent::Failed { message }) => {
                    s.phase = Phase::Done;
                    return Some(json(&ApiError::internal(message).body()));
                }
                None => {
                    s.phase = Phase::Done;
                    let err = ApiError::internal("the runtime ended the request without an answer");
                    return Some(json(&err.body()));
                }
            },
            Phase::Usage(usage) => {
                s.phase = Phase::Done;
                return Some(s.chunks.usage(usage));
            }
            Phase::Done => {
                s.phase = Phase::End;
                return Some("[DONE]".to_string());
            }
            Phase::End => {
                s.phase = Phase::End;
                return None;
            }
        }
    }
}
