//! The output folder: created and probed before any simulation runs, so that a bad `--out`
//! fails in milliseconds, not after minutes of simulation.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::ReportError;

/// Name of the probe file written (and removed) to check that the folder is writable.
const PROBE_NAME: &str = ".fastlibra-write-probe";

/// Creates `dir` (and its parents) and checks that a file can be written in it.
pub fn prepare_dir(dir: &Path) -> Result<(), ReportError> {
    fs::create_dir_all(dir).map_err(|e| ReportError::output_dir(dir, e))?;
    let probe = dir.join(PROBE_NAME);
    fs::write(&probe, b"").map_err(|e| ReportError::output_dir(dir, e))?;
    fs::remove_file(&probe).map_err(|e| ReportError::output_dir(dir, e))
}

/// Writes `contents` (text or bytes) to `dir/name` and returns the path written.
pub fn write_file(
    dir: &Path,
    name: &str,
    contents: impl AsRef<[u8]>,
) -> Result<PathBuf, ReportError> {
    let path = dir.join(name);
    fs::write(&path, contents).map_err(|e| ReportError::write(&path, e))?;
    Ok(path)
}
