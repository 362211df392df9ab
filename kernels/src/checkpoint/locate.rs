//! Where the project keeps models and its Python environment, computed at run time from the
//! environment (nothing machine-specific is compiled in).
//!
//! - `FASTLIBRA_MODEL_DIR`, default `${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/models`: the
//!   models `scripts/fetch-model.sh` downloads.
//! - `FASTLIBRA_VENV`, default `${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/venv`: the Python
//!   environment `scripts/py-env.sh` builds (`gguf`, `numpy`, `llama-cpp-python`).
//! - `FASTLIBRA_REQUIRE_MODEL=1` (CI sets it): tests that need the model fail instead of
//!   skipping when it is missing.

use std::path::PathBuf;

/// The file name of the real model the tests use (SmolLM2-135M-Instruct, Q4_1).
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra`, or `None` when neither variable is set.
pub fn cache_dir() -> Option<PathBuf> {
    let base = env_path("XDG_CACHE_HOME").or_else(|| env_path("HOME").map(|h| h.join(".cache")));
    base.map(|b| b.join("fastlibra"))
}

/// The model folder (`FASTLIBRA_MODEL_DIR` or its default).
pub fn model_dir() -> Option<PathBuf> {
    env_path("FASTLIBRA_MODEL_DIR").or_else(|| cache_dir().map(|c| c.join("models")))
}

/// The Python environment (`FASTLIBRA_VENV` or its default).
pub fn venv_dir() -> Option<PathBuf> {
    env_path("FASTLIBRA_VENV").or_else(|| cache_dir().map(|c| c.join("venv")))
}

/// The environment's Python interpreter, if it exists.
pub fn venv_python() -> Option<PathBuf> {
    venv_dir()
        .map(|v| v.join("bin").join("python"))
        .filter(|p| p.is_file())
}

/// The SmolLM2 model file, if it is in the model folder.
pub fn smollm2() -> Option<PathBuf> {
    model_dir()
        .map(|d| d.join(SMOLLM2_FILE))
        .filter(|p| p.is_file())
}

/// Whether `FASTLIBRA_REQUIRE_MODEL=1`: a missing model is then a failure, not a skip.
pub fn model_required() -> bool {
    std::env::var("FASTLIBRA_REQUIRE_MODEL").is_ok_and(|v| v == "1")
}
