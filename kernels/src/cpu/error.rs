//! The typed errors of the CPU backend.

use thiserror::Error;

/// Why a CPU model could not be built or a forward pass could not run. Every check happens
/// before any page is written, so an error leaves the [`KvArena`](super::KvArena) untouched.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CpuError {
    /// The model configuration is inconsistent (a zero width, heads not a multiple of KV heads,
    /// an odd head width, a non-finite constant).
    #[error("invalid CPU model config: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A sequence has no new tokens.
    #[error("sequence {seq} has no tokens")]
    EmptyInput {
        /// Index of the sequence in the batch.
        seq: usize,
    },
    /// A token id is not in the vocabulary.
    #[error("sequence {seq}: token {token} is not below the vocabulary size {vocab}")]
    TokenOutOfRange {
        /// Index of the sequence in the batch.
        seq: usize,
        /// The token id.
        token: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// The block table does not cover every position the pass reads or writes.
    #[error(
        "sequence {seq}: block table has {got} pages, {needed} needed for {positions} positions"
    )]
    BlockTableTooShort {
        /// Index of the sequence in the batch.
        seq: usize,
        /// Positions covered after the pass (`start_pos + tokens`).
        positions: usize,
        /// Pages needed.
        needed: usize,
        /// Pages in the table.
        got: usize,
    },
    /// A page id is not in the arena.
    #[error("sequence {seq}: page {page} is outside the arena of {pages} pages")]
    PageOutOfRange {
        /// Index of the sequence in the batch.
        seq: usize,
        /// The page id.
        page: u32,
        /// Pages in the arena.
        pages: usize,
    },
    /// The arena's pages are not the size this model's KV blocks need.
    #[error("page holds {got} floats, a KV block of this model needs {expected}")]
    PageSize {
        /// Floats per page the model needs (`block_tokens × kv_floats_per_token`).
        expected: usize,
        /// Floats per page of the arena.
        got: usize,
    },
    /// A page a pass writes is also used by another block of the batch: the writes would race
    /// with the reads.
    #[error("page {page} is written by sequence {writer} and also used by sequence {other}")]
    PageConflict {
        /// The page id.
        page: u32,
        /// The sequence that writes it.
        writer: usize,
        /// The sequence (possibly the same one, at another block) that also uses it.
        other: usize,
    },
    /// A pass would take a sequence past the model's context length.
    #[error("sequence {seq}: {positions} positions exceed the context length {context_len}")]
    ContextTooLong {
        /// Index of the sequence in the batch.
        seq: usize,
        /// Positions after the pass (`start_pos + tokens`).
        positions: usize,
        /// The model's context length.
        context_len: usize,
    },
    /// A checkpoint could not be read, or one of its tensors is missing or not the shape the
    /// model's configuration needs.
    #[error("checkpoint: {reason}")]
    Checkpoint {
        /// What is wrong, naming the file or the tensor.
        reason: String,
    },
    /// A LoRA adapter does not fit this model.
    #[error("LoRA adapter does not fit the model: {reason}")]
    LoraShape {
        /// What does not match.
        reason: String,
    },
}

/// Result of the CPU backend.
pub type Result<T, E = CpuError> = std::result::Result<T, E>;
