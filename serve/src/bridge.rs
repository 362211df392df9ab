//! The bridge to the runtime: submit a validated request, then read its tokens, either all
//! at once (a plain answer) or one by one (a stream). Dropping a [`Running`] drops its
//! [`RequestStream`], which cancels the request and releases its pins at once; that is what
//! happens when a client goes away, since hyper then drops the handler or the response body.

use fastlibra_kernels::sampling::{FinishReason, SampledToken};
use fastlibra_runtime::online::{RequestStream, TokenEvent, Usage};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::limits;
use crate::metrics::RequestTimer;
use crate::state::AppState;
use crate::validate::Validated;

/// A submitted request and what its answer needs.
pub struct Running {
    /// Its events.
    pub stream: RequestStream,
    /// Its clock for the metrics.
    pub timer: RequestTimer,
    /// The request as validated.
    pub validated: Validated,
    _slot: OwnedSemaphorePermit,
}

/// A request read to its end.
#[derive(Clone, Debug)]
pub struct Collected {
    /// The whole text.
    pub text: String,
    /// Each token (with log-probabilities when asked) and the text it added.
    pub tokens: Vec<(SampledToken, String)>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

/// Takes a slot (429 when none is free) and submits (the runtime's refusals mapped to their
/// statuses). Refused while draining (503).
pub fn submit(state: &AppState, validated: Validated) -> Result<Running, ApiError> {
    if state.is_draining() {
        return Err(ApiError::unavailable("the server is shutting down", None));
    }
    let o = &state.options;
    let slot = limits::admit(&state.slots, o.max_in_flight, o.retry_after_s)?;
    let stream = state.backend.submit(validated.request.clone())?;
    Ok(Running {
        stream,
        timer: state.metrics.timer(),
        validated,
        _slot: slot,
    })
}

impl Running {
    /// The next event, timed for the metrics; `None` after the last.
    pub async fn next(&mut self) -> Option<TokenEvent> {
        let event = self.stream.next().await;
        match &event {
            Some(TokenEvent::Token(_)) => self.timer.token(),
            Some(TokenEvent::Done { finish, usage }) => self.timer.done(*finish, *usage),
            Some(TokenEvent::Failed { .. }) => self.timer.failed(),
            None => {}
        }
        event
    }

    /// Reads every event to the end.
    pub async fn collect(mut self) -> Result<Collected, ApiError> {
        let mut text = String::new();
        let mut tokens = Vec::new();
        loop {
            match self.next().await {
                Some(TokenEvent::Token(step)) => {
                    text.push_str(&step.text);
                    tokens.push((step.token, step.text));
                }
                Some(TokenEvent::Done { finish, usage }) => {
                    return Ok(Collected {
                        text,
                        tokens,
                        finish,
                        usage,
                    });
                }
                Some(TokenEvent::Failed { message }) => return Err(ApiError::internal(message)),
                None => {
                    self.timer.failed();
                    return Err(ApiError::internal(
                        "the runtime ended the request without an answer",
                    ));
                }
            }
        }
    }
}

/// OpenAI's name of a finish reason.
pub fn finish_name(finish: FinishReason) -> &'static str {
    match finish {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}
