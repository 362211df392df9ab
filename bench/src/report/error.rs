//! What can go wrong while writing a report.

use std::path::Path;

/// Errors of the report writers. Each names the file or folder it was about.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output folder could not be created, or is not writable.
    #[error("cannot use output directory {path}: {source}")]
    OutputDir {
        /// The folder, as given.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An interval log could not be encoded.
    #[error("cannot encode an HdrHistogram interval log: {0}")]
    Hlog(String),
    /// A plot could not be drawn.
    #[error("cannot draw {plot}: {message}")]
    Plot {
        /// The plot's file name.
        plot: String,
        /// What went wrong.
        message: String,
    },
    /// The per-request CSV could not be encoded.
    #[error("cannot encode a requests.csv: {0}")]
    Csv(String),
    /// The report could not be encoded as JSON.
    #[error("cannot encode report.json: {0}")]
    Json(#[from] serde_json::Error),
}

impl ReportError {
    /// An [`ReportError::OutputDir`] for `path`.
    pub fn output_dir(path: &Path, source: std::io::Error) -> ReportError {
        ReportError::OutputDir {
            path: path.display().to_string(),
            source,
        }
    }

    /// A [`ReportError::Write`] for `path`.
    pub fn write(path: &Path, source: std::io::Error) -> ReportError {
        ReportError::Write {
            path: path.display().to_string(),
            source,
        }
    }
}
