//! Everything that can be wrong with a checkpoint on disk.

use std::path::PathBuf;

/// An error opening or reading a checkpoint. Every variant names the file, and the field
/// (metadata key, config field) or the tensor where there is one, so a bad file can be found
/// and fixed. Opening checks everything before returning, so an error never leaves a
/// checkpoint loaded half-way.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file or folder could not be opened, read or memory-mapped.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// The path is neither a `.gguf` file nor a folder with a `config.json`.
    #[error("{path}: not a checkpoint: {reason}")]
    NotACheckpoint {
        /// The path given.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
    /// The file ends before a field it announces.
    #[error("{path}: truncated: {field} needs {needed} bytes at offset {offset}, file has {len}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The field being read (for example ``metadata key #3 (`llama.block_count`) value``).
        field: String,
        /// Where the field starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Length of the file.
        len: u64,
    },
    /// A field holds a value the format does not allow (bad magic, unknown value type, a
    /// string that is not UTF-8, a tensor outside the data section, …).
    #[error("{path}: {field}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The field or tensor.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is valid but uses something this loader does not implement (a GGUF version,
    /// an architecture, a RoPE scaling kind, biases, a tensor type or dtype).
    #[error("{path}: {field}: unsupported: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The field or tensor.
        field: String,
        /// What is not supported, and what is.
        reason: String,
    },
    /// A required metadata key or config field is absent.
    #[error("{path}: missing field `{field}`")]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The metadata key or config field.
        field: String,
    },
    /// A metadata key or config field has the wrong type or a value that makes no sense.
    #[error("{path}: field `{field}`: {reason}")]
    InvalidField {
        /// The file.
        path: PathBuf,
        /// The metadata key or config field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{path}: missing tensor `{tensor}`")]
    MissingTensor {
        /// The file or folder.
        path: PathBuf,
        /// The tensor name, in the file's own naming.
        tensor: String,
    },
    /// A tensor's shape disagrees with the model configuration.
    #[error("{path}: tensor `{tensor}` has shape {found}; the config implies {expected}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor name, in the file's own naming.
        tensor: String,
        /// The shape in the file.
        found: String,
        /// The shape the config implies.
        expected: String,
    },
    /// [`Checkpoint::tensor`](super::Checkpoint::tensor) was asked for a name the checkpoint
    /// does not have.
    #[error("{path}: no tensor named `{tensor}`")]
    UnknownTensor {
        /// The checkpoint.
        path: PathBuf,
        /// The canonical name asked for.
        tensor: String,
    },
}

/// Shorthand for results of this module.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;
