//! Request bodies from bytes: every failure is a 400 naming the field at fault.
//!
//! This is the parser the fuzz target `serve_request` drives: no input may panic it, and
//! every error it returns must be a client error with a body that serialises.

use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::protocol::{ChatRequest, CompletionRequest, LoadLoraRequest, UnloadLoraRequest};

/// Parses a JSON body into `T`. Malformed JSON and a body that is not a JSON object are 400s
/// saying so; a missing or mistyped field is a 400 whose `param` is the field's path.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            not_json(&inner)
        } else {
            let param = (path != ".").then_some(path.as_str());
            ApiError::bad_request(param, format!("invalid request: {inner}"))
        }
    })?;
    de.end().map_err(|e| not_json(&e))?;
    Ok(value)
}

fn not_json(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(None, format!("the body is not valid JSON: {err}"))
}

/// A completion request.
pub fn completion(body: &[u8]) -> Result<CompletionRequest, ApiError> {
    parse_json(body)
}

/// A chat request.
pub fn chat(body: &[u8]) -> Result<ChatRequest, ApiError> {
    parse_json(body)
}

/// A LoRA load request.
pub fn load_lora(body: &[u8]) -> Result<LoadLoraRequest, ApiError> {
    parse_json(body)
}

/// A LoRA unload request.
pub fn unload_lora(body: &[u8]) -> Result<UnloadLoraRequest, ApiError> {
    parse_json(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn malformed_json_is_a_400_without_a_param() {
        for body in [
            &b"{"[..],
            b"",
            b"{\"model\": }",
            b"\xff\xfe",
            br#"{"model": "m", "prompt": "x"} trailing"#,
        ] {
            let err = completion(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body:?}");
            assert!(err.message.contains("not valid JSON"), "{}", err.message);
            assert_eq!(err.param, None);
        }
    }

    #[test]
    fn a_missing_or_mistyped_field_names_it() {
        let err = completion(br#"{"prompt": "hi"}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message.contains("missing field `model`"),
            "{}",
            err.message
        );

        let err =
            completion(br#"{"model": "m", "prompt": "hi", "max_tokens": "ten"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("max_tokens"));

        let err =
            chat(br#"{"model": "m", "messages": [{"role": 3, "content": "x"}]}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));

        let err = completion(b"[1, 2]").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_shapes_clients_send_parse() {
        let r = completion(br#"{"model": "m", "prompt": [1, 2, 3], "stop": "x", "user": "u"}"#)
            .unwrap();
        assert!(matches!(r.prompt, crate::protocol::Prompt::Tokens(ref t) if t == &[1, 2, 3]));
        let r = chat(
            br#"{"model": "m", "messages": [{"role": "user",
                 "content": [{"type": "text", "text": "hi"}]}], "stream": true,
                 "stream_options": {"include_usage": true}, "max_tokens": null}"#,
        )
        .unwrap();
        assert_eq!(r.stream, Some(true));
        assert!(r.stream_options.unwrap().include_usage);
        let r = load_lora(br#"{"lora_name": "a", "lora_path": "/x"}"#).unwrap();
        assert_eq!(r.lora_name, "a");
    }
}
