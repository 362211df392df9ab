//! Everything that can be wrong with a tokenizer, its vocabulary or its chat template.

use std::path::PathBuf;

/// An error loading a tokenizer, encoding or decoding with it, or rendering its chat template.
/// Each variant names where the tokenizer came from (`origin`: a file, or a file and a field) so
/// a bad one can be found among many.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A JSON file (`tokenizer_config.json`) is not valid JSON, or a field has the wrong type.
    #[error("{path}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The `tokenizers` crate refused `tokenizer.json`, or refused the tokenizer built from
    /// GGUF metadata.
    #[error("{origin}: cannot build the tokenizer: {message}")]
    Build {
        /// The file the tokenizer came from.
        origin: String,
        /// What the `tokenizers` crate said.
        message: String,
    },
    /// A metadata field is missing, has the wrong type, or holds a value that is out of range.
    #[error("{origin}: field `{field}`: {message}")]
    Field {
        /// The file the metadata came from.
        origin: String,
        /// The field (a GGUF key or a `tokenizer_config.json` field).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// `tokenizer.ggml.model` names a tokenizer family this crate does not build.
    #[error(
        "{origin}: field `tokenizer.ggml.model`: unsupported tokenizer model `{model}` \
         (supported: gpt2, llama)"
    )]
    UnsupportedModel {
        /// The file the metadata came from.
        origin: String,
        /// The model name the file holds.
        model: String,
    },
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not know.
    #[error(
        "{origin}: field `tokenizer.ggml.pre`: unknown pre-tokenizer `{pre}` (supported: {supported})"
    )]
    UnsupportedPreTokenizer {
        /// The file the metadata came from.
        origin: String,
        /// The pre-tokenizer name the file holds.
        pre: String,
        /// The names this crate knows, comma-separated.
        supported: String,
    },
    /// The tokenizer's vocabulary does not have as many entries as the model's embedding rows.
    #[error(
        "{origin}: the tokenizer has {tokenizer} tokens but the model's vocabulary has {model}"
    )]
    VocabMismatch {
        /// The file the tokenizer came from.
        origin: String,
        /// The tokenizer's vocabulary size.
        tokenizer: usize,
        /// The model's vocabulary size.
        model: usize,
    },
    /// A token id is not in the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    UnknownToken {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// Encoding or decoding failed inside the `tokenizers` crate.
    #[error("{origin}: {message}")]
    Codec {
        /// The file the tokenizer came from.
        origin: String,
        /// What the `tokenizers` crate said.
        message: String,
    },
    /// The checkpoint has no chat template.
    #[error("{origin}: no chat template (neither `tokenizer.chat_template` nor `chat_template`)")]
    NoChatTemplate {
        /// The file the tokenizer came from.
        origin: String,
    },
    /// The chat template does not parse, or fails to render (including `raise_exception`).
    #[error("chat template from {origin}: {message}")]
    Template {
        /// Where the template came from (file and field).
        origin: String,
        /// What minijinja said, with the template line where it knows one.
        message: String,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, TokenizerError>;
