//! Validation: every field and the token budget are checked before anything is queued, and
//! each failure is one [`ApiError`]. A request that passes becomes a [`Validated`]: a
//! tokenised [`GenerateRequest`] plus how to answer it.

use fastlibra_kernels::sampling::{SamplingError, SamplingParams};
use fastlibra_runtime::online::{AdapterListing, GenerateRequest, ModelInfo};

use crate::error::ApiError;
use crate::protocol::{ChatRequest, CompletionRequest, Prompt, Stop, StreamOptions};
use crate::template;

/// `max_tokens` of a completion that gives none (OpenAI's and vLLM's default).
pub const COMPLETION_MAX_TOKENS_DEFAULT: u32 = 16;

/// A request ready for the runtime.
#[derive(Clone, Debug)]
pub struct Validated {
    /// What the runtime runs.
    pub request: GenerateRequest,
    /// The `model` field as sent (echoed in the answer).
    pub model: String,
    /// Answer by server-sent events.
    pub stream: bool,
    /// Streamed: send a usage chunk before `[DONE]`.
    pub include_usage: bool,
    /// Return the prompt's and the answer's token ids (vLLM's `return_token_ids`).
    pub return_token_ids: bool,
}

/// The sampling fields both endpoints share.
struct Common {
    max_tokens: Option<u32>,
    default_max_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i64>,
    seed: Option<i64>,
    stop: Option<Stop>,
    stop_token_ids: Option<Vec<u32>>,
    n: Option<u32>,
    logprobs: Option<usize>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    return_token_ids: Option<bool>,
}

/// The adapter `model` names: `None` for the base model, 404 for a name nobody serves.
pub fn resolve_model(
    model: &str,
    info: &ModelInfo,
    adapters: &[AdapterListing],
) -> Result<Option<String>, ApiError> {
    if model == info.served_name {
        return Ok(None);
    }
    if adapters.iter().any(|a| a.name == model) {
        return Ok(Some(model.to_string()));
    }
    Err(ApiError::not_found(format!(
        "the model `{model}` does not exist"
    )))
}

/// A completion request, checked and tokenised.
pub fn completion(
    req: CompletionRequest,
    info: &ModelInfo,
    adapters: &[AdapterListing],
) -> Result<Validated, ApiError> {
    let adapter = resolve_model(&req.model, info, adapters)?;
    if req.echo == Some(true) {
        return Err(ApiError::bad_request(Some("echo"), "echo is not supported"));
    }
    if req.best_of.is_some_and(|b| b > 1) {
        return Err(ApiError::bad_request(
            Some("best_of"),
            "best_of > 1 is not supported",
        ));
    }
    let logprobs = req.logprobs.map(|n| n as usize);
    let prompt = completion_prompt(req.prompt, info)?;
    let common = Common {
        max_tokens: req.max_tokens,
        default_max_tokens: Some(COMPLETION_MAX_TOKENS_DEFAULT),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        seed: req.seed,
        stop: req.stop,
        stop_token_ids: req.stop_token_ids,
        n: req.n,
        logprobs,
        stream: req.stream,
        stream_options: req.stream_options,
        return_token_ids: req.return_token_ids,
    };
    finish(common, adapter, prompt, req.model, info)
}

/// A chat request, rendered by the chat template, checked and tokenised.
pub fn chat(
    req: ChatRequest,
    info: &ModelInfo,
    adapters: &[AdapterListing],
) -> Result<Validated, ApiError> {
    let adapter = resolve_model(&req.model, info, adapters)?;
    let logprobs = match (req.logprobs, req.top_logprobs) {
        (Some(true), top) => Some(top.unwrap_or(0) as usize),
        (_, Some(top)) if top > 0 => {
            return Err(ApiError::bad_request(
                Some("top_logprobs"),
                "top_logprobs needs logprobs: true",
            ));
        }
        _ => None,
    };
    let prompt = template::chat_prompt(&info.tokenizer, &req.messages)?;
    let common = Common {
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        default_max_tokens: None,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        seed: req.seed,
        stop: req.stop,
        stop_token_ids: req.stop_token_ids,
        n: req.n,
        logprobs,
        stream: req.stream,
        stream_options: req.stream_options,
        return_token_ids: req.return_token_ids,
    };
    finish(common, adapter, prompt, req.model, info)
}

/// Token ids of a completion's prompt: exactly one prompt, not empty, every id in the
/// vocabulary.
fn completion_prompt(prompt: Prompt, info: &ModelInfo) -> Result<Vec<u32>, ApiError> {
    let one = |n: usize| {
        (n == 1).then_some(()).ok_or_else(|| {
            ApiError::bad_request(
                Some("prompt"),
                format!("{n} prompts in one request; send exactly one prompt per request"),
            )
        })
    };
    let ids = match prompt {
        Prompt::Text(text) => encode(info, &text)?,
        Prompt::Texts(mut texts) => {
            one(texts.len())?;
            encode(info, &texts.swap_remove(0))?
        }
        Prompt::Tokens(ids) => ids,
        Prompt::TokenLists(mut lists) => {
            one(lists.len())?;
            lists.swap_remove(0)
        }
    };
    if ids.is_empty() {
        return Err(ApiError::bad_request(Some("prompt"), "the prompt is empty"));
    }
    let vocab = info.tokenizer.vocab_size();
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        let message = format!("token id {bad} is outside the vocabulary of {vocab} tokens");
        return Err(ApiError::bad_request(Some("prompt"), message));
    }
    Ok(ids)
}

fn encode(info: &ModelInfo, text: &str) -> Result<Vec<u32>, ApiError> {
    info.tokenizer
        .encode(text, true)
        .map_err(|e| ApiError::bad_request(Some("prompt"), format!("tokenizing: {e}")))
}

/// The shared checks: `n`, the token budget, the sampling parameters.
fn finish(
    c: Common,
    adapter: Option<String>,
    prompt: Vec<u32>,
    model: String,
    info: &ModelInfo,
) -> Result<Validated, ApiError> {
    if c.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request(Some("n"), "only n = 1 is supported"));
    }
    let max_tokens = budget(prompt.len(), c.max_tokens, c.default_max_tokens, info)?;
    let stream = c.stream.unwrap_or(false);
    if c.stream_options.is_some() && !stream {
        return Err(ApiError::bad_request(
            Some("stream_options"),
            "stream_options is only allowed with stream: true",
        ));
    }
    let params = SamplingParams {
        temperature: c.temperature.unwrap_or(1.0),
        top_k: top_k(c.top_k)?,
        top_p: c.top_p.unwrap_or(1.0),
        // OpenAI seeds are signed 64-bit integers; every value names one stream.
        seed: c.seed.map(|s| s as u64),
        max_tokens: max_tokens as usize,
        stop: c.stop.map(Stop::into_vec).unwrap_or_default(),
        stop_token_ids: c.stop_token_ids.unwrap_or_default(),
        logprobs: c.logprobs,
    };
    params
        .validate_for_vocab(info.tokenizer.vocab_size())
        .map_err(sampling_error)?;
    Ok(Validated {
        request: GenerateRequest {
            adapter,
            prompt,
            params,
        },
        model,
        stream,
        include_usage: c.stream_options.is_some_and(|o| o.include_usage),
        return_token_ids: c.return_token_ids == Some(true),
    })
}

/// `max_tokens`, or the default (what the context leaves when there is none), checked
/// against `--max-model-len`.
fn budget(
    prompt_tokens: usize,
    max_tokens: Option<u32>,
    default: Option<u32>,
    info: &ModelInfo,
) -> Result<u32, ApiError> {
    let limit = info.max_model_len as usize;
    let too_long = |asked: usize| {
        let message = format!(
            "this model's maximum context length is {limit} tokens; the prompt has \
             {prompt_tokens} and max_tokens asks for {asked}"
        );
        Err(ApiError::bad_request(Some("max_tokens"), message))
    };
    if prompt_tokens >= limit {
        return too_long(max_tokens.unwrap_or(1) as usize);
    }
    let left = (limit - prompt_tokens) as u32;
    let asked = match max_tokens.or(default) {
        Some(0) => {
            return Err(ApiError::bad_request(
                Some("max_tokens"),
                "max_tokens must be at least 1",
            ));
        }
        // An explicit max_tokens over the context is an error; the default is capped.
        Some(n) if max_tokens.is_some() && n > left => return too_long(n as usize),
        Some(n) => n.min(left),
        None => left,
    };
    Ok(asked)
}

fn top_k(top_k: Option<i64>) -> Result<usize, ApiError> {
    match top_k {
        None | Some(-1) | Some(0) => Ok(0),
        Some(k) if k > 0 => Ok(usize::try_from(k).unwrap_or(usize::MAX)),
        Some(k) => Err(ApiError::bad_request(
            Some("top_k"),
            format!("{k}; top_k is a positive number, or 0 or -1 for all tokens"),
        )),
    }
}

fn sampling_error(err: SamplingError) -> ApiError {
    match err {
        SamplingError::InvalidParam { field, message } => {
            ApiError::bad_request(Some(field), format!("`{field}`: {message}"))
        }
        other => ApiError::bad_request(None, other.to_string()),
    }
}
