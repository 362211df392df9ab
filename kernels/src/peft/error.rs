//! Everything that can be wrong with a PEFT adapter on disk or in memory.

use std::path::PathBuf;

/// An error loading, checking, writing or paging a LoRA adapter. Each variant names the file
/// (and, where there is one, the tensor) so a bad adapter can be found among many.
#[derive(Debug, thiserror::Error)]
pub enum PeftError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// `adapter_config.json` is not valid JSON, or a field has the wrong JSON type.
    #[error("{path}: invalid JSON: {message}")]
    Json {
        /// The config file.
        path: PathBuf,
        /// The JSON parser's message (it names line and column).
        message: String,
    },
    /// A config field has a value this loader does not accept.
    #[error("{path}: field `{field}`: {message}")]
    ConfigField {
        /// The config file.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The safetensors file is malformed (truncated, bad header, offsets out of range).
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A tensor has a dtype other than F32, F16 or BF16, or differs from the others.
    #[error("{path}: tensor `{tensor}` has dtype {found}; expected {expected}")]
    Dtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// What the file holds.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// A tensor's shape does not match the model and the config's rank.
    #[error("{path}: tensor `{tensor}` has shape {found:?}; expected {expected:?}")]
    Shape {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape the model and rank imply.
        expected: Vec<usize>,
    },
    /// A tensor the config and model require is not in the file.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The expected tensor name.
        tensor: String,
    },
    /// The file holds a tensor that is not a LoRA weight of a configured target and layer.
    #[error("{path}: unexpected tensor `{tensor}`: {reason}")]
    UnknownTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Why it is not expected (unknown name, layer beyond the model, target not configured).
        reason: String,
    },
    /// An adapter built in memory is inconsistent (matrix length, layer or target count).
    #[error("invalid adapter: {0}")]
    Invalid(String),
    /// A page size of zero, or pages that do not match their layout.
    #[error("invalid paging: {0}")]
    Paging(String),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, PeftError>;
