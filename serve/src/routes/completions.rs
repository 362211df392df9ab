//! `POST /v1/completions`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use fastlibra_kernels::sampling::{FinishReason, Step};
use fastlibra_kernels::tokenizer::Tokenizer;
use fastlibra_runtime::online::Usage;

use crate::bridge::{self, finish_name};
use crate::error::ApiError;
use crate::protocol::{CompletionChoice, CompletionChunk, CompletionResponse};
use crate::sse::{self, Chunks};
use crate::state::{AppState, unix_now_s};
use crate::token_ids::StreamedIds;
use crate::{logprobs, parse, validate};

/// Answers a completion, plain or streamed.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match run(&state, request).await {
        Ok(response) => response,
        Err(err) => super::refuse(&state, err).into_response(),
    }
}

async fn run(state: &Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let body = super::body(state, request).await?;
    let req = parse::completion(&body)?;
    let info = state.backend.model();
    let validated = validate::completion(req, info, &state.backend.adapters())?;
    let running = bridge::submit(state, validated)?;
    let id = state.response_id("cmpl");
    let created = unix_now_s();
    let model = running.validated.model.clone();
    let want_logprobs = running.validated.request.params.logprobs.is_some();
    let want_ids = running.validated.return_token_ids;
    if running.validated.stream {
        let chunks = CompletionChunks {
            id,
            created,
            model,
            tokenizer: info.tokenizer.clone(),
            want_logprobs,
            offset: 0,
            ids: StreamedIds::new(want_ids, &running.validated.request.prompt),
        };
        return Ok(sse::stream(running, chunks).into_response());
    }
    let prompt_token_ids = want_ids.then(|| running.validated.request.prompt.clone());
    let done = running.collect().await?;
    let token_ids = want_ids.then(|| done.tokens.iter().map(|(t, _)| t.id).collect());
    let logprobs = want_logprobs.then(|| logprobs::completion(&info.tokenizer, &done.tokens, 0));
    let response = CompletionResponse {
        id,
        object: "text_completion",
        created,
        model,
        choices: vec![CompletionChoice {
            index: 0,
            text: done.text,
            logprobs,
            finish_reason: Some(finish_name(done.finish)),
            prompt_token_ids,
            token_ids,
        }],
        usage: done.usage.into(),
    };
    Ok(axum::Json(response).into_response())
}

struct CompletionChunks {
    id: String,
    created: u64,
    model: String,
    tokenizer: Arc<Tokenizer>,
    want_logprobs: bool,
    offset: usize,
    ids: StreamedIds,
}

impl CompletionChunks {
    fn chunk(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> String {
        sse::json(&CompletionChunk {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: usage.map(Into::into),
        })
    }
}

impl Chunks for CompletionChunks {
    fn first(&mut self) -> Option<String> {
        None
    }

    fn token(&mut self, step: &Step) -> Option<String> {
        self.ids.push(step.token.id);
        if step.text.is_empty() && !self.want_logprobs && !self.ids.on() {
            return None;
        }
        let pair = [(step.token.clone(), step.text.clone())];
        let logprobs = self
            .want_logprobs
            .then(|| logprobs::completion(&self.tokenizer, &pair, self.offset));
        self.offset += step.text.len();
        let choice = CompletionChoice {
            index: 0,
            text: step.text.clone(),
            logprobs,
            finish_reason: None,
            prompt_token_ids: self.ids.take_prompt(),
            token_ids: self.ids.take(),
        };
        Some(self.chunk(vec![choice], None))
    }

    fn finish(&mut self, finish: FinishReason) -> String {
        let choice = CompletionChoice {
            index: 0,
            text: String::new(),
            logprobs: None,
            finish_reason: Some(finish_name(finish)),
            prompt_token_ids: self.ids.take_prompt(),
            token_ids: self.ids.take(),
        };
        self.chunk(vec![choice], None)
    }

    fn usage(&mut self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
