//! Chat messages to prompt tokens through the checkpoint's own chat template.

use fastlibra_kernels::tokenizer::{ChatMessage, Tokenizer};

use crate::error::ApiError;
use crate::protocol::{ChatContent, ChatMessageIn};

/// The most messages one conversation may hold.
pub const MESSAGES_MAX: usize = 4096;

/// Renders `messages` with the generation prompt and tokenises the result. The rendered text
/// carries its own special tokens, so none are added (as vLLM tokenises chat prompts).
pub fn chat_prompt(
    tokenizer: &Tokenizer,
    messages: &[ChatMessageIn],
) -> Result<Vec<u32>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad_request(
            Some("messages"),
            "a chat needs at least one message",
        ));
    }
    if messages.len() > MESSAGES_MAX {
        let message = format!("{} messages; at most {MESSAGES_MAX}", messages.len());
        return Err(ApiError::bad_request(Some("messages"), message));
    }
    let template = tokenizer.require_chat_template().map_err(|e| {
        ApiError::bad_request(
            Some("messages"),
            format!("this model has no chat template: {e}"),
        )
    })?;
    let converted = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Ok(ChatMessage::new(m.role.clone(), content_text(i, m)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let text = template
        .render(&converted, true)
        .map_err(|e| ApiError::bad_request(Some("messages"), format!("chat template: {e}")))?;
    tokenizer
        .encode(&text, false)
        .map_err(|e| ApiError::bad_request(Some("messages"), format!("tokenizing: {e}")))
}

/// A message's text: plain content, or its text parts joined.
fn content_text(index: usize, message: &ChatMessageIn) -> Result<String, ApiError> {
    match &message.content {
        None => Ok(String::new()),
        Some(ChatContent::Text(text)) => Ok(text.clone()),
        Some(ChatContent::Parts(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(t)) => text.push_str(t),
                    (kind, _) => {
                        let param = format!("messages[{index}].content[{j}]");
                        let message = format!(
                            "content parts of type `{kind}` are not supported; \
                             only `text` parts with a `text` field"
                        );
                        return Err(ApiError::bad_request(Some(&param), message));
                    }
                }
            }
            Ok(text)
        }
    }
}
