//! Shared pieces of the checkpoint tests: the real model (or a skip), and tiny fixtures in
//! both formats built here, so most tests need no download.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fastlibra_kernels::checkpoint::gguf::write::{TensorToWrite, to_bytes};
use fastlibra_kernels::checkpoint::names;
use fastlibra_kernels::checkpoint::{GgufValue, LlamaConfig, Tensor, locate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The SmolLM2 file, or `None` after one skip line. Panics when it is missing and
/// `FASTLIBRA_REQUIRE_MODEL=1`.
pub fn model(test: &str) -> Option<PathBuf> {
    if let Some(path) = locate::smollm2() {
        return Some(path);
    }
    let dir = locate::model_dir().unwrap_or_default();
    let file = dir.join(locate::SMOLLM2_FILE);
    assert!(
        !locate::model_required(),
        "{test}: FASTLIBRA_REQUIRE_MODEL=1 but {} is missing; run scripts/fetch-model.sh",
        file.display()
    );
    eprintln!(
        "skip {test}: {} not found (run scripts/fetch-model.sh)",
        file.display()
    );
    None
}

/// The venv's Python with the `gguf` package, or `None` after one skip line. Panics when it
/// is missing and `FASTLIBRA_REQUIRE_MODEL=1`.
pub fn python(test: &str) -> Option<PathBuf> {
    if let Some(python) = locate::venv_python() {
        return Some(python);
    }
    let venv = locate::venv_dir().unwrap_or_default();
    assert!(
        !locate::model_required(),
        "{test}: FASTLIBRA_REQUIRE_MODEL=1 but the Python environment {} is missing; run \
         scripts/py-env.sh",
        venv.display()
    );
    eprintln!(
        "skip {test}: no Python environment at {} (run scripts/py-env.sh)",
        venv.display()
    );
    None
}

/// The repository root (the parent of `kernels/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// A small GQA model: 2 layers, hidden 64, 4 heads and 2 KV heads of 16, FFN 128, vocab 96.
pub fn tiny_config(tied: bool) -> LlamaConfig {
    LlamaConfig {
        layers: 2,
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        head_dim: 16,
        ffn: 128,
        vocab: 96,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        context_len: 256,
        tied_embeddings: tied,
        name: "tiny".into(),
    }
}

/// Every tensor of `config` (canonical names, Hugging Face layout) with seeded random values.
pub fn tiny_tensors(config: &LlamaConfig, seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    names::expected_tensors(config)
        .into_iter()
        .map(|e| {
            let values: Vec<f32> = (0..e.rows * e.cols)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let tensor = Tensor {
                rows: e.rows,
                cols: e.cols,
                data: values.into(),
            };
            (e.name, tensor)
        })
        .collect()
}

/// llama.cpp's Q/K row order, written out independently of the crate's own: within each head
/// of width `d`, Hugging Face row `r` goes to row `2r` if `r < d/2`, else `2(r − d/2) + 1`.
pub fn llama_cpp_rows(t: &Tensor, heads: usize) -> Vec<f32> {
    let d = t.rows / heads;
    let mut out = vec![0.0; t.rows * t.cols];
    for r in 0..t.rows {
        let (head, within) = (r / d, r % d);
        let to = head * d
            + if within < d / 2 {
                2 * within
            } else {
                2 * (within - d / 2) + 1
            };
        out[to * t.cols..(to + 1) * t.cols].copy_from_slice(t.row(r));
    }
    out
}

/// `llama.*` metadata of `config`, as llama.cpp's converter writes it.
pub fn llama_metadata(config: &LlamaConfig) -> Vec<(String, GgufValue)> {
    let u32v = |v: usize| GgufValue::U32(v as u32);
    vec![
        (
            "general.architecture".into(),
            GgufValue::String("llama".into()),
        ),
        (
            "general.name".into(),
            GgufValue::String(config.name.clone()),
        ),
        ("llama.block_count".into(), u32v(config.layers)),
        ("llama.context_length".into(), u32v(config.context_len)),
        ("llama.embedding_length".into(), u32v(config.hidden)),
        ("llama.feed_forward_length".into(), u32v(config.ffn)),
        ("llama.attention.head_count".into(), u32v(config.heads)),
        (
            "llama.attention.head_count_kv".into(),
            u32v(config.kv_heads),
        ),
        (
            "llama.rope.freq_base".into(),
            GgufValue::F32(config.rope_theta),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            GgufValue::F32(config.rms_eps),
        ),
        ("llama.rope.dimension_count".into(), u32v(config.head_dim)),
        ("llama.vocab_size".into(), u32v(config.vocab)),
    ]
}

/// The tensors as a llama.cpp converter writes them: GGUF names, F32, Q and K rows permuted
/// (by [`llama_cpp_rows`], not by the crate's code).
pub fn gguf_tensors(config: &LlamaConfig, tensors: &[(String, Tensor)]) -> Vec<TensorToWrite> {
    let expected = names::expected_tensors(config);
    tensors
        .iter()
        .map(|(name, t)| {
            let e = expected
                .iter()
                .find(|e| e.name == *name)
                .expect("a model tensor");
            let values = match e.rope_heads {
                Some(heads) => llama_cpp_rows(t, heads),
                None => t.as_slice().to_vec(),
            };
            TensorToWrite::f32(&e.gguf_name, t.rows, t.cols, &values)
        })
        .collect()
}

/// The bytes of a tiny GGUF `llama` file of `config` with these tensors.
pub fn tiny_gguf(config: &LlamaConfig, tensors: &[(String, Tensor)]) -> Vec<u8> {
    to_bytes(&llama_metadata(config), &gguf_tensors(config, tensors))
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty folder under the system's temporary folder.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fastlibra-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
