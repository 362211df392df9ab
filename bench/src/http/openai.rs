//! The OpenAI Completions API as the benchmark speaks it: the streamed request body, the
//! chunks that come back, and the `/v1/models` listing.
//!
//! Parsing is lenient in what it ignores (unknown fields, missing optional ones) and strict in
//! what it needs: a chunk must be a JSON object; its text, token ids, finish reason and usage
//! are read where present. A chunk with an `error` object is a failure the server reported
//! inside the stream.

use serde_json::{Value, json};

/// A prompt as sent: token ids (exact lengths) or text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptBody {
    /// Token ids (`"prompt": [1, 2, 3]`; vLLM, SGLang and fastlibra accept them).
    Ids(Vec<u32>),
    /// Text.
    Text(String),
}

/// The body of one streamed completion request. Token-id prompts also ask for the answer's
/// ids (vLLM's and fastlibra's `return_token_ids`; servers without it ignore the field), so
/// the next turn resends exactly what the server generated.
pub fn completion_body(model: &str, prompt: &PromptBody, max_tokens: u32) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    match prompt {
        PromptBody::Ids(ids) => {
            body["prompt"] = json!(ids);
            body["return_token_ids"] = json!(true);
        }
        PromptBody::Text(text) => body["prompt"] = json!(text),
    }
    body
}

/// What one `data:` chunk of a completion stream says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Generated text in this chunk (all choices).
    pub text: String,
    /// Token ids, where the server sends them (`token_ids`, vLLM's `return_token_ids`).
    pub token_ids: Vec<u32>,
    /// Whether a choice carried a `finish_reason`.
    pub finished: bool,
    /// `usage.completion_tokens`, where present.
    pub completion_tokens: Option<u32>,
    /// `usage.prompt_tokens`, where present.
    pub prompt_tokens: Option<u32>,
    /// Whether the chunk carried at least one choice (a usage-only chunk has none).
    pub has_choice: bool,
}

/// Why a chunk is not a completion chunk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Not JSON, or not a JSON object.
    #[error("a streamed chunk is not a JSON object: {0}")]
    NotJson(String),
    /// The server reported an error inside the stream.
    #[error("the server reported an error in the stream: {0}")]
    ServerError(String),
}

/// Parses one `data:` payload other than `[DONE]`.
pub fn parse_chunk(data: &str) -> Result<Chunk, ChunkError> {
    let value: Value =
        serde_json::from_str(data).map_err(|e| ChunkError::NotJson(short(data, &e)))?;
    let Some(obj) = value.as_object() else {
        return Err(ChunkError::NotJson(truncate(data)));
    };
    if let Some(err) = obj.get("error").filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| err.to_string(), str::to_string);
        return Err(ChunkError::ServerError(truncate(&message)));
    }
    let mut chunk = Chunk::default();
    for choice in obj
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        chunk.has_choice = true;
        // Completions put the text in `text`; a chat stream puts it in `delta.content`.
        let text = choice
            .get("text")
            .or_else(|| choice.get("delta").and_then(|d| d.get("content")))
            .and_then(Value::as_str);
        if let Some(text) = text {
            chunk.text.push_str(text);
        }
        if let Some(ids) = choice.get("token_ids").and_then(Value::as_array) {
            chunk.token_ids.extend(
                ids.iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|i| u32::try_from(i).ok()),
            );
        }
        if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
            chunk.finished = true;
        }
    }
    if let Some(usage) = obj.get("usage").filter(|u| !u.is_null()) {
        let count = |k: &str| {
            usage
                .get(k)
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        chunk.completion_tokens = count("completion_tokens");
        chunk.prompt_tokens = count("prompt_tokens");
    }
    Ok(chunk)
}

/// The model ids a `/v1/models` answer lists, in its order.
pub fn parse_models(body: &str) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| short(body, &e))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no `data` list in {}", truncate(body)))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(str::to_string)
        .collect())
}

fn short(text: &str, e: &serde_json::Error) -> String {
    format!("{e} in {}", truncate(text))
}

/// At most 200 characters of `text`, for messages.
pub fn truncate(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_chunk_gives_text_ids_and_finish() {
        let c = parse_chunk(
            r#"{"id":"x","object":"text_completion","choices":[{"index":0,"text":" hi","token_ids":[5,6],"finish_reason":null}]}"#,
        )
        .expect("chunk");
        assert_eq!(c.text, " hi");
        assert_eq!(c.token_ids, vec![5, 6]);
        assert!(!c.finished && c.has_choice);
        let c = parse_chunk(r#"{"choices":[{"text":"","finish_reason":"length"}]}"#).expect("ok");
        assert!(c.finished);
    }

    #[test]
    fn usage_only_chunks_and_chat_deltas_are_read() {
        let c = parse_chunk(r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#)
            .expect("ok");
        assert_eq!((c.prompt_tokens, c.completion_tokens), (Some(7), Some(3)));
        assert!(!c.has_choice);
        let c = parse_chunk(r#"{"choices":[{"delta":{"content":"yo"}}]}"#).expect("ok");
        assert_eq!(c.text, "yo");
    }

    #[test]
    fn errors_in_the_stream_and_non_json_are_reported() {
        assert_eq!(
            parse_chunk(r#"{"error":{"message":"boom","code":500}}"#),
            Err(ChunkError::ServerError("boom".into()))
        );
        assert!(matches!(parse_chunk("<html>"), Err(ChunkError::NotJson(_))));
        assert!(matches!(parse_chunk("[1,2]"), Err(ChunkError::NotJson(_))));
    }

    #[test]
    fn models_are_listed_in_order() {
        let body = r#"{"object":"list","data":[{"id":"base"},{"id":"lora-1"},{"x":1}]}"#;
        assert_eq!(parse_models(body), Ok(vec!["base".into(), "lora-1".into()]));
        assert!(parse_models("{}").is_err());
        assert!(parse_models("nope").is_err());
    }

    #[test]
    fn bodies_carry_ids_or_text() {
        let b = completion_body("m", &PromptBody::Ids(vec![1, 2]), 4);
        assert_eq!(b["prompt"], json!([1, 2]));
        assert_eq!(b["stream"], json!(true));
        assert_eq!(b["return_token_ids"], json!(true));
        let b = completion_body("m", &PromptBody::Text("a b".into()), 4);
        assert_eq!(b["prompt"], json!("a b"));
        assert!(b.get("return_token_ids").is_none());
        assert_eq!(b["max_tokens"], json!(4));
    }

    #[test]
    fn truncate_cuts_on_character_boundaries() {
        let s = "é".repeat(300);
        let t = truncate(&s);
        assert!(t.ends_with('…') && t.chars().count() == 201);
    }
}
