//! The generation loop: prefill the prompt, then sample and feed one token at a time.

use super::error::GenerateError;
use super::sequence::Sequence;
use crate::cpu::{CpuLora, CpuModel};
use crate::sampling::{FinishReason, Generation, SamplingParams, Step};
use crate::tokenizer::Tokenizer;

/// What a generation produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// The generated token ids, the stop token included when one ended it.
    pub tokens: Vec<u32>,
    /// The text streamed, concatenated.
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
}

/// Generates after `prompt` with `model` (and `lora`, if any) as `params` say, calling
/// `on_step` with every token as it is chosen (its text is ready to stream). `model_name`
/// names the checkpoint in errors. The same seed, prompt and adapter give the same tokens.
pub fn generate(
    model: &CpuModel,
    tokenizer: &Tokenizer,
    lora: Option<&CpuLora>,
    prompt: &[u32],
    params: &SamplingParams,
    model_name: &str,
    mut on_step: impl FnMut(&Step),
) -> Result<Generated, GenerateError> {
    let context_len = model.config().context_len;
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt {
            model: model_name.to_string(),
        });
    }
    if prompt.len().saturating_add(params.max_tokens) > context_len {
        return Err(GenerateError::ContextTooLong {
            model: model_name.to_string(),
            prompt_tokens: prompt.len(),
            max_tokens: params.max_tokens,
            context_len,
        });
    }
    let mut generation = Generation::new(tokenizer, params, prompt)?;
    // The last sampled token is never fed, so the sequence needs one position less.
    let mut seq = Sequence::new(model, lora, prompt.len() + params.max_tokens)?;
    let mut logits = seq.feed(prompt)?;
    let mut out = Generated {
        prompt_tokens: prompt.len(),
        tokens: Vec::new(),
        text: String::new(),
        finish: FinishReason::Length,
    };
    loop {
        let step = generation.step(tokenizer, &logits)?;
        on_step(&step);
        out.tokens.push(step.token.id);
        out.text.push_str(&step.text);
        if let Some(finish) = step.finish {
            out.finish = finish;
            return Ok(out);
        }
        logits = seq.feed(&[step.token.id])?;
    }
}
