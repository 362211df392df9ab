//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use fastlibra_kernels::sampling::{FinishReason, Step};
use fastlibra_kernels::tokenizer::Tokenizer;
use fastlibra_runtime::online::Usage;

use crate::bridge::{self, finish_name};
use crate::error::ApiError;
use crate::protocol::{
    ChatChoice, ChatChunk, ChatChunkChoice, ChatDelta, ChatMessageOut, ChatResponse,
};
use crate::sse::{self, Chunks};
use crate::state::{AppState, unix_now_s};
use crate::token_ids::StreamedIds;
use crate::{logprobs, parse, validate};

/// Answers a chat completion, plain or streamed.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match run(&state, request).await {
        Ok(response) => response,
        Err(err) => super::refuse(&state, err).into_response(),
    }
}

async fn run(state: &Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let body = super::body(state, request).await?;
    let req = parse::chat(&body)?;
    let info = state.backend.model();
    let validated = validate::chat(req, info, &state.backend.adapters())?;
    let running = bridge::submit(state, validated)?;
    let id = state.response_id("chatcmpl");
    let created = unix_now_s();
    let model = running.validated.model.clone();
    let want_logprobs = running.validated.request.params.logprobs.is_some();
    let want_ids = running.validated.return_token_ids;
    if running.validated.stream {
        let chunks = ChatChunks {
            id,
            created,
            model,
            tokenizer: info.tokenizer.clone(),
            want_logprobs,
            ids: StreamedIds::new(want_ids, &running.validated.request.prompt),
        };
        return Ok(sse::stream(running, chunks).into_response());
    }
    let prompt_token_ids = want_ids.then(|| running.validated.request.prompt.clone());
    let done = running.collect().await?;
    let token_ids = want_ids.then(|| done.tokens.iter().map(|(t, _)| t.id).collect());
    let logprobs = want_logprobs.then(|| logprobs::chat(&info.tokenizer, &done.tokens));
    let response = ChatResponse {
        id,
        object: "chat.completion",
        created,
        model,
        choices: vec![ChatChoice {
            index: 0,
            message: ChatMessageOut {
                role: "assistant",
                content: done.text,
            },
            logprobs,
            finish_reason: finish_name(done.finish),
            token_ids,
        }],
        usage: done.usage.into(),
        prompt_token_ids,
    };
    Ok(axum::Json(response).into_response())
}

struct ChatChunks {
    id: String,
    created: u64,
    model: String,
    tokenizer: Arc<Tokenizer>,
    want_logprobs: bool,
    ids: StreamedIds,
}

impl ChatChunks {
    fn chunk(&mut self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> String {
        sse::json(&ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: usage.map(Into::into),
            prompt_token_ids: self.ids.take_prompt(),
        })
    }
}

impl Chunks for ChatChunks {
    fn first(&mut self) -> Option<String> {
        let delta = ChatDelta {
            role: Some("assistant"),
            content: Some(String::new()),
        };
        let choice = ChatChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: None,
            token_ids: self.ids.take(),
        };
        Some(self.chunk(vec![choice], None))
    }

    fn token(&mut self, step: &Step) -> Option<String> {
        self.ids.push(step.token.id);
        if step.text.is_empty() && !self.want_logprobs && !self.ids.on() {
            return None;
        }
        let pair = [(step.token.clone(), step.text.clone())];
        let choice = ChatChunkChoice {
            index: 0,
            delta: ChatDelta {
                role: None,
                content: Some(step.text.clone()),
            },
            logprobs: self
                .want_logprobs
                .then(|| logprobs::chat(&self.tokenizer, &pair)),
            finish_reason: None,
            token_ids: self.ids.take(),
        };
        Some(self.chunk(vec![choice], None))
    }

    fn finish(&mut self, finish: FinishReason) -> String {
        let choice = ChatChunkChoice {
            index: 0,
            delta: ChatDelta::default(),
            logprobs: None,
            finish_reason: Some(finish_name(finish)),
            token_ids: self.ids.take(),
        };
        self.chunk(vec![choice], None)
    }

    fn usage(&mut self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
