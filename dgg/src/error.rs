//! The one error type at the crate boundary.
//!
//! Every variant names the file it is about and, where there is one, the line or field, so a
//! user can find the bad input without a debugger. Problems that only affect one row or one
//! trace are not errors: they are counted in the handler's report and the rest is processed.

use std::path::{Path, PathBuf};

/// Errors of the DGG pipeline.
#[derive(Debug, thiserror::Error)]
pub enum DggError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON or does not have the expected shape.
    #[error("{}:{line}:{column}: {msg}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// 1-based column of the problem (0 when unknown).
        column: usize,
        /// What is wrong.
        msg: String,
    },
    /// A call-graph file is valid JSON but a field is missing or inconsistent.
    #[error("{}: {field}: {msg}", path.display())]
    GraphField {
        /// The file.
        path: PathBuf,
        /// The field, for example `edges[3].target`.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// A CSV file cannot be used at all (unreadable header, missing column, empty file).
    #[error("{}:{line}: {msg}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line (1 is the header).
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// `service_info.csv` is missing from an input folder.
    #[error("{}: missing service_info.csv (expected the data handler's output folder)", path.display())]
    MissingServiceInfo {
        /// The path where it was expected.
        path: PathBuf,
    },
    /// Nothing usable was found in the input.
    #[error("{}: {msg}", path.display())]
    NoData {
        /// The input that held nothing usable.
        path: PathBuf,
        /// What was missing.
        msg: String,
    },
    /// A command-line or API argument is out of range.
    #[error("invalid argument {name}: {msg}")]
    InvalidArgument {
        /// The argument, for example `--n`.
        name: &'static str,
        /// What is wrong with it.
        msg: String,
    },
}

/// Result with [`DggError`].
pub type Result<T> = std::result::Result<T, DggError>;

impl DggError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DggError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A JSON error about `path`, with serde's line and column.
    pub fn json(path: &Path, err: &serde_json::Error) -> Self {
        DggError::Json {
            path: path.to_path_buf(),
            line: err.line(),
            column: err.column(),
            msg: err.to_string(),
        }
    }

    /// A missing or inconsistent field of a call-graph file.
    pub fn field(path: &Path, field: impl Into<String>, msg: impl Into<String>) -> Self {
        DggError::GraphField {
            path: path.to_path_buf(),
            field: field.into(),
            msg: msg.into(),
        }
    }
}
