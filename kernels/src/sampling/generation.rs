//! One request's generation: sample, detokenise, check the stop conditions, stream text.

use super::params::{SamplingError, SamplingParams};
use super::sampler::{SampledToken, Sampler};
use super::stop::StopStrings;
use crate::tokenizer::{Detokenizer, Tokenizer};

/// Why a generation ended (OpenAI's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token (EOS, end of turn) or a stop string.
    Stop,
    /// `max_tokens` were generated.
    Length,
}

/// What one token produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The chosen token and its log-probabilities.
    pub token: SampledToken,
    /// The text to stream now: whole characters, never part of a stop string, and not the
    /// text of a stop token.
    pub text: String,
    /// Set on the last step.
    pub finish: Option<FinishReason>,
}

/// The sampling and stopping state of one request, from its prompt to its last token.
///
/// ```text
///   logits ─► Sampler ─► id ─┬─ stop token? ──────────────► finish: Stop (text flushed)
///                            └─ Detokenizer ─► StopStrings ─► text (held while a stop
///                                                              string may be starting)
///                               max_tokens reached ─────────► finish: Length
/// ```
#[derive(Debug, Clone)]
pub struct Generation {
    sampler: Sampler,
    detok: Detokenizer,
    stop: StopStrings,
    stop_ids: Vec<u32>,
    max_tokens: usize,
    generated: usize,
    finished: Option<FinishReason>,
}

impl Generation {
    /// A generation after `prompt` with `tokenizer`'s end-of-turn tokens and `params`
    /// (validated here, stop token ids against the vocabulary).
    pub fn new(
        tokenizer: &Tokenizer,
        params: &SamplingParams,
        prompt: &[u32],
    ) -> Result<Self, SamplingError> {
        params.validate_for_vocab(tokenizer.vocab_size())?;
        let mut stop_ids: Vec<u32> = tokenizer.eot_tokens().to_vec();
        stop_ids.extend(&params.stop_token_ids);
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(Self {
            sampler: Sampler::new(params)?,
            detok: Detokenizer::after_prompt(prompt, true),
            stop: StopStrings::new(&params.stop),
            stop_ids,
            max_tokens: params.max_tokens,
            generated: 0,
            finished: None,
        })
    }

    /// Samples the next token from `logits` (one per vocabulary entry) and accepts it.
    pub fn step(&mut self, tokenizer: &Tokenizer, logits: &[f32]) -> Result<Step, SamplingError> {
        if self.finished.is_some() {
            return Err(SamplingError::Finished);
        }
        if logits.len() != tokenizer.vocab_size() {
            return Err(SamplingError::LogitsLength {
                found: logits.len(),
                vocab_size: tokenizer.vocab_size(),
            });
        }
        let token = self.sampler.sample(logits)?;
        self.accept(tokenizer, token)
    }

    /// Accepts a token chosen elsewhere (for example replayed from a log). An id outside
    /// the vocabulary is an error and changes nothing.
    pub fn accept(
        &mut self,
        tokenizer: &Tokenizer,
        token: SampledToken,
    ) -> Result<Step, SamplingError> {
        if self.finished.is_some() {
            return Err(SamplingError::Finished);
        }
        let id = token.id;
        if self.stop_ids.binary_search(&id).is_ok() {
            self.generated += 1;
            let text = self.flush(tokenizer)?;
            return Ok(self.finish(token, text, FinishReason::Stop));
        }
        let piece = self.detok.push(tokenizer, id)?;
        self.generated += 1;
        let check = self.stop.push(&piece);
        if check.stopped {
            return Ok(self.finish(token, check.text, FinishReason::Stop));
        }
        if self.generated >= self.max_tokens {
            let mut text = check.text;
            text.push_str(&self.flush(tokenizer)?);
            return Ok(self.finish(token, text, FinishReason::Length));
        }
        Ok(Step {
            token,
            text: check.text,
            finish: None,
        })
    }

    /// Why the generation ended, once it has.
    pub fn finished(&self) -> Option<FinishReason> {
        self.finished
    }

    /// How many tokens have been accepted.
    pub fn generated(&self) -> usize {
        self.generated
    }

    /// The token ids that end this generation, sorted.
    pub fn stop_token_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// The held-back text: the detokenizer's incomplete bytes, then through the stop-string
    /// matcher (a stop string completed by the last bytes is still cut).
    fn flush(&mut self, tokenizer: &Tokenizer) -> Result<String, SamplingError> {
        let tail = self.detok.finish(tokenizer)?;
        let check = self.stop.push(&tail);
        if check.stopped {
            return Ok(check.text);
        }
        let mut text = check.text;
        text.push_str(&self.stop.finish());
        Ok(text)
    }

    fn finish(&mut self, token: SampledToken, text: String, reason: FinishReason) -> Step {
        self.finished = Some(reason);
        Step {
            token,
            text,
            finish: Some(reason),
        }
    }
}
