//! Log-probabilities in the two OpenAI formats: the legacy completions one and chat's.

use std::collections::BTreeMap;

use fastlibra_kernels::sampling::SampledToken;
use fastlibra_kernels::tokenizer::Tokenizer;

use crate::protocol::{ChatLogprob, ChatLogprobs, ChatTopLogprob, CompletionLogprobs};

/// A token's text as logprobs show it (special tokens included).
fn token_text(tokenizer: &Tokenizer, id: u32) -> String {
    tokenizer
        .decode(&[id], false)
        .unwrap_or_else(|_| format!("<token {id}>"))
}

/// Completions' format for `tokens`; `offset` is the completion's text length before them.
pub fn completion(
    tokenizer: &Tokenizer,
    tokens: &[(SampledToken, String)],
    mut offset: usize,
) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    for (token, text) in tokens {
        out.tokens.push(token_text(tokenizer, token.id));
        out.token_logprobs.push(token.logprob);
        let top: BTreeMap<String, f32> = token
            .top_logprobs
            .iter()
            .map(|t| (token_text(tokenizer, t.id), t.logprob))
            .collect();
        out.top_logprobs.push(top);
        out.text_offset.push(offset);
        offset += text.len();
    }
    out
}

/// Chat's format for `tokens`.
pub fn chat(tokenizer: &Tokenizer, tokens: &[(SampledToken, String)]) -> ChatLogprobs {
    let content = tokens
        .iter()
        .map(|(token, _)| {
            let text = token_text(tokenizer, token.id);
            ChatLogprob {
                bytes: text.as_bytes().to_vec(),
                token: text,
                logprob: token.logprob.unwrap_or(f32::NEG_INFINITY),
                top_logprobs: token
                    .top_logprobs
                    .iter()
                    .map(|t| {
                        let text = token_text(tokenizer, t.id);
                        ChatTopLogprob {
                            bytes: text.as_bytes().to_vec(),
                            token: text,
                            logprob: t.logprob,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    ChatLogprobs { content }
}
