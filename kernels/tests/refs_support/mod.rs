//! Shared by the tests that compare the CPU model with llama.cpp: the model files, the
//! reference files `scripts/refs/all.sh` writes (schemas in docs/peers.md), and the
//! skip-or-fail rule (`FASTLIBRA_REQUIRE_MODEL=1` turns a missing file into a failure).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fastlibra_kernels::checkpoint::locate;
use serde_json::Value;

/// The F32 copy of the SmolLM2 file (`scripts/fetch-model.sh` writes it).
pub const F32_FILE: &str = "SmolLM2-135M-Instruct.F32.gguf";
/// The SmolLM2 file as published (Q4_1, Q8_0 and F32 tensors).
pub const Q4_1_FILE: &str = locate::SMOLLM2_FILE;

const HOW: &str = "run scripts/py-env.sh, scripts/fetch-model.sh, then scripts/refs/all.sh";

/// The reference-file folder (`FASTLIBRA_REFS_DIR`, default `…/fastlibra/refs`).
pub fn refs_dir() -> PathBuf {
    std::env::var_os("FASTLIBRA_REFS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| locate::cache_dir().map(|c| c.join("refs")))
        .unwrap_or_else(|| PathBuf::from("refs"))
}

/// `path` if it is a file; otherwise a failure under `FASTLIBRA_REQUIRE_MODEL=1`, or one skip
/// line and `None`.
pub fn file_or_skip(test: &str, path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    assert!(
        !locate::model_required(),
        "{test}: {} is missing and FASTLIBRA_REQUIRE_MODEL=1 ({HOW})",
        path.display()
    );
    eprintln!("skip {test}: {} is missing ({HOW})", path.display());
    None
}

/// A model file of the model folder, or a skip.
pub fn model_file(test: &str, name: &str) -> Option<PathBuf> {
    let dir = locate::model_dir().unwrap_or_default();
    file_or_skip(test, &dir.join(name))
}

/// A JSON reference file of the refs folder (schema 1), or a skip.
pub fn reference(test: &str, name: &str) -> Option<Value> {
    let path = file_or_skip(test, &refs_dir().join(name))?;
    let text = std::fs::read_to_string(&path).expect("read the reference file");
    let doc: Value = serde_json::from_str(&text).expect("the reference file is JSON");
    assert_eq!(doc["schema"], 1, "{}: unknown schema", path.display());
    Some(doc)
}

/// The rows of a raw f32 array a reference describes (`{"file", "dtype": "f32le", "shape"}`).
pub fn f32_rows(desc: &Value) -> Vec<Vec<f32>> {
    assert_eq!(desc["dtype"], "f32le");
    let name = desc["file"].as_str().expect("file");
    let shape: Vec<usize> = desc["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|v| v.as_u64().expect("a dimension") as usize)
        .collect();
    let bytes = std::fs::read(refs_dir().join(name)).expect("read the raw array");
    assert_eq!(bytes.len(), shape[0] * shape[1] * 4, "{name}: size");
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    values.chunks(shape[1]).map(<[f32]>::to_vec).collect()
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an array of ids")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("an id")).expect("a u32 id"))
        .collect()
}

/// Largest `|a − b|`.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .fold(0.0, |m: f32, (x, y)| m.max((x - y).abs()))
}

/// The index of the largest value, the lowest on a tie (llama.cpp's greedy rule in the refs).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}
