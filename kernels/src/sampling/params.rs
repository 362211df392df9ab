//! A request's sampling parameters and the checks they must pass before anything runs.

use serde::{Deserialize, Serialize};

use crate::tokenizer::TokenizerError;

/// The most top log-probabilities a request may ask for (OpenAI's limit).
pub const LOGPROBS_MAX: usize = 20;
/// The most stop strings a request may give.
pub const STOP_STRINGS_MAX: usize = 16;
/// The longest stop string, in bytes.
pub const STOP_STRING_BYTES_MAX: usize = 256;

/// How one request picks its tokens and when it stops. The defaults are OpenAI's:
/// temperature 1, no top-k, top-p 1, no seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`, in
    /// (0, 1]; 1 keeps all.
    pub top_p: f32,
    /// Seed of the request's random stream; the same seed and logits give the same tokens.
    /// `None` draws one from the operating system.
    pub seed: Option<u64>,
    /// The most tokens to generate.
    pub max_tokens: usize,
    /// Texts that end the generation when they appear; they are not part of the output.
    pub stop: Vec<String>,
    /// Token ids that end the generation, besides the tokenizer's end-of-turn tokens.
    pub stop_token_ids: Vec<u32>,
    /// Log-probabilities to report per position: `None` for none, `Some(n)` for the chosen
    /// token's and the `n` most likely tokens' (OpenAI's `logprobs` and `top_logprobs`).
    pub logprobs: Option<usize>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: None,
            max_tokens: 256,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            logprobs: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding: always the most likely token.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether these parameters always pick the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// Checks every field; the first bad one is an error naming it.
    pub fn validate(&self) -> Result<(), SamplingError> {
        let bad = |field: &'static str, message: String| {
            Err(SamplingError::InvalidParam { field, message })
        };
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(
                "temperature",
                format!("{} is not a number >= 0", self.temperature),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("{} is not in (0, 1]", self.top_p));
        }
        if self.max_tokens == 0 {
            return bad(
                "max_tokens",
                "0; at least 1 token must be allowed".to_string(),
            );
        }
        if let Some(n) = self.logprobs
            && n > LOGPROBS_MAX
        {
            return bad("logprobs", format!("{n} is more than {LOGPROBS_MAX}"));
        }
        if self.stop.len() > STOP_STRINGS_MAX {
            let n = self.stop.len();
            return bad("stop", format!("{n} strings; at most {STOP_STRINGS_MAX}"));
        }
        for s in &self.stop {
            if s.is_empty() || s.len() > STOP_STRING_BYTES_MAX {
                let message =
                    format!("{s:?} is empty or longer than {STOP_STRING_BYTES_MAX} bytes");
                return bad("stop", message);
            }
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and every stop token id below `vocab_size`.
    pub fn validate_for_vocab(&self, vocab_size: usize) -> Result<(), SamplingError> {
        self.validate()?;
        match self
            .stop_token_ids
            .iter()
            .find(|&&id| id as usize >= vocab_size)
        {
            Some(&id) => Err(SamplingError::InvalidParam {
                field: "stop_token_ids",
                message: format!("{id} is outside the vocabulary of {vocab_size} tokens"),
            }),
            None => Ok(()),
        }
    }
}

/// Why a request could not be sampled.
#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    /// A sampling parameter is out of range.
    #[error("sampling parameter `{field}`: {message}")]
    InvalidParam {
        /// The parameter's name (as in the OpenAI API).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The logits are empty.
    #[error("no logits to sample from")]
    EmptyLogits,
    /// A logit is NaN or +infinity (a broken forward pass).
    #[error("logit {index} is {value}; logits must be finite or -inf")]
    NonFiniteLogit {
        /// The token id.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The logits row does not have one entry per vocabulary token.
    #[error("{found} logits for a vocabulary of {vocab_size} tokens")]
    LogitsLength {
        /// The row's length.
        found: usize,
        /// The tokenizer's vocabulary size.
        vocab_size: usize,
    },
    /// Every logit is -inf, so no token can be chosen.
    #[error("every logit is -inf; no token can be chosen")]
    NoCandidates,
    /// The request already finished; no more tokens are accepted.
    #[error("the generation has already finished")]
    Finished,
    /// Detokenising the chosen token failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}
