//! Shared by the tokenizer tests: where the real model and the reference files live, and the
//! skip-or-fail rule for tests that need them.
//!
//! Paths come from the environment, computed at run time: `FASTLIBRA_MODEL_DIR` (default
//! `${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/models`) and `FASTLIBRA_REFS_DIR` (default
//! `…/fastlibra/refs`). A missing file fails the test when `FASTLIBRA_REQUIRE_MODEL=1` (CI) and
//! prints one skip line otherwise.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fastlibra_kernels::checkpoint::GgufFile;
use fastlibra_kernels::tokenizer::Tokenizer;

pub mod vocabs;

/// The real model's file name.
pub const SMOLLM2_Q4_1: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("fastlibra")
}

/// The model folder.
pub fn model_dir() -> PathBuf {
    std::env::var_os("FASTLIBRA_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("models"))
}

/// The reference-file folder.
pub fn refs_dir() -> PathBuf {
    std::env::var_os("FASTLIBRA_REFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("refs"))
}

/// Whether a missing model or reference file must fail the test.
pub fn required() -> bool {
    std::env::var("FASTLIBRA_REQUIRE_MODEL").is_ok_and(|v| v == "1")
}

/// `path` if it exists; otherwise a failure under `FASTLIBRA_REQUIRE_MODEL=1` and one skip
/// line (and `None`) without it. `how` says how to make the file.
pub fn file_or_skip(test: &str, path: &Path, how: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    assert!(
        !required(),
        "{test}: {} is missing and FASTLIBRA_REQUIRE_MODEL=1 ({how})",
        path.display()
    );
    eprintln!("skip {test}: {} is missing ({how})", path.display());
    None
}

/// The SmolLM2 tokenizer from the real GGUF file, or a skip.
pub fn smollm2(test: &str) -> Option<Tokenizer> {
    let path = file_or_skip(
        test,
        &model_dir().join(SMOLLM2_Q4_1),
        "run scripts/fetch-model.sh",
    )?;
    let file = GgufFile::open(&path).expect("open the GGUF file");
    Some(Tokenizer::from_gguf(&file).expect("build the tokenizer"))
}

/// The mixed-text fixture.
pub fn mixed_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tokenizer_mixed.txt");
    std::fs::read_to_string(&path).expect("read the fixture")
}

/// A fresh empty folder under the system's temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new folder named after `tag` and this process.
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fastlibra-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
