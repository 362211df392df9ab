//! Why a generation could not start or run.

use std::path::PathBuf;

use thiserror::Error;

use crate::checkpoint::CheckpointError;
use crate::cpu::CpuError;
use crate::sampling::SamplingError;
use crate::tokenizer::TokenizerError;

/// A generation's error; each names the file and the field or value at fault.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// The checkpoint could not be opened.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The tokenizer could not be built, or the chat template could not render.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The model refused its weights or an input.
    #[error(transparent)]
    Cpu(#[from] CpuError),
    /// The sampling parameters are invalid.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The adapter folder could not be loaded, or does not fit the model.
    #[error("adapter {dir}: {source}")]
    Adapter {
        /// The PEFT folder.
        dir: PathBuf,
        /// What is wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The prompt has no tokens.
    #[error("{model}: the prompt is empty (no tokens to start from)")]
    EmptyPrompt {
        /// The checkpoint.
        model: String,
    },
    /// The prompt and the tokens to generate do not fit the model's context.
    #[error(
        "{model}: the prompt's {prompt_tokens} tokens plus max_tokens {max_tokens} exceed the \
         context length {context_len}"
    )]
    ContextTooLong {
        /// The checkpoint (its `context_length` / `max_position_embeddings`).
        model: String,
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens asked for.
        max_tokens: usize,
        /// The model's context length.
        context_len: usize,
    },
}
