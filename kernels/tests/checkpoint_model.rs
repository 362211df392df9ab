//! The real model (SmolLM2-135M-Instruct, Q4_1): its shape and metadata, and the same weights
//! through a Hugging Face folder (converted by Python, independently of this crate, and written
//! by this crate) load to the same tensors.
//!
//! Needs `scripts/fetch-model.sh` (and for the Python conversion `scripts/py-env.sh`); skips
//! with one line when they are missing, fails under `FASTLIBRA_REQUIRE_MODEL=1`.

mod checkpoint_support;

use std::process::Command;

use checkpoint_support::{TempDir, model, python, repo_root};
use fastlibra_kernels::checkpoint::hf::write_hf;
use fastlibra_kernels::checkpoint::names::{self, LayerTensor};
use fastlibra_kernels::checkpoint::{Checkpoint, Format, GgmlType, GgufValue};
use fastlibra_kernels::peft::WeightDtype;

#[test]
fn smollm2_has_its_published_shape_and_metadata() {
    let Some(path) = model("smollm2_has_its_published_shape_and_metadata") else {
        return;
    };
    let ckpt = Checkpoint::open_shared(&path).expect("open");
    let c = &ckpt.config;
    let shape = (
        c.layers, c.hidden, c.heads, c.kv_heads, c.head_dim, c.ffn, c.vocab,
    );
    assert_eq!(shape, (30, 576, 9, 3, 64, 1536, 49_152));
    assert_eq!(
        (c.rope_theta, c.rms_eps, c.context_len),
        (100_000.0, 1e-5, 8192)
    );
    assert!(c.tied_embeddings);
    assert_eq!(ckpt.format, Format::Gguf);
    // 9 per layer, embedding, final norm, and the tied head.
    assert_eq!(ckpt.tensor_names().len(), 30 * 9 + 3);
    for e in names::expected_tensors(c) {
        let t = ckpt.tensor(&e.name).expect("tensor");
        assert_eq!((t.rows, t.cols), (e.rows, e.cols), "{}", e.name);
        assert!(t.as_slice().iter().all(|v| v.is_finite()), "{}", e.name);
    }
    assert!(
        ckpt.tensor(&LayerTensor::InputNorm.name(0))
            .expect("norm")
            .data
            .is_mapped()
    );
    let spec = c.model_spec();
    assert_eq!(
        (spec.kv_bytes_per_token(), spec.params),
        (46_080, 134_515_008)
    );

    let gguf = ckpt.gguf.as_ref().expect("GGUF metadata");
    let len = |key: &str| {
        gguf.get(key)
            .and_then(GgufValue::as_array)
            .map(<[GgufValue]>::len)
    };
    assert_eq!(len("tokenizer.ggml.tokens"), Some(49_152));
    assert_eq!(len("tokenizer.ggml.merges"), Some(48_900));
    let template = gguf
        .get("tokenizer.chat_template")
        .and_then(GgufValue::as_str);
    assert!(template.is_some_and(|t| t.contains("<|im_start|>")));
    assert_eq!(
        gguf.get("tokenizer.ggml.eos_token_id")
            .and_then(GgufValue::as_u64),
        Some(2)
    );
    let types: Vec<GgmlType> = gguf.tensors().iter().map(|t| t.ggml_type).collect();
    for (t, count) in [
        (GgmlType::Q4_1, 210),
        (GgmlType::F32, 61),
        (GgmlType::Q8_0, 1),
    ] {
        assert_eq!(types.iter().filter(|&&x| x == t).count(), count, "{t}");
    }
}

#[test]
fn a_python_conversion_to_hugging_face_loads_to_identical_tensors() {
    let test = "a_python_conversion_to_hugging_face_loads_to_identical_tensors";
    let (Some(path), Some(python)) = (model(test), python(test)) else {
        return;
    };
    let dir = TempDir::new("smollm2-hf");
    let folder = dir.path().join("SmolLM2-hf");
    let script = repo_root().join("scripts/refs/gguf_to_hf.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&path)
        .arg(&folder)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "gguf_to_hf.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gguf = Checkpoint::open_shared(&path).expect("gguf");
    let hf = Checkpoint::open(&folder).expect("hf");
    assert_eq!(gguf.config, hf.config);
    assert_eq!(gguf.tensor_names(), hf.tensor_names());
    for name in gguf.tensor_names() {
        let (a, b) = (
            gguf.tensor(&name).expect("gguf"),
            hf.tensor(&name).expect("hf"),
        );
        assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{name}");
        let differ = a
            .as_slice()
            .iter()
            .zip(b.as_slice())
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{name}: {differ} of {} values differ",
            a.as_slice().len()
        );
        assert!(b.data.is_mapped(), "{name}: an f32 folder is read in place");
    }
}

#[test]
fn a_sharded_bf16_folder_written_here_round_trips() {
    let Some(path) = model("a_sharded_bf16_folder_written_here_round_trips") else {
        return;
    };
    let gguf = Checkpoint::open_shared(&path).expect("gguf");
    let tensors: Vec<_> = names::expected_tensors(&gguf.config)
        .into_iter()
        .map(|e| (e.name.clone(), gguf.tensor(&e.name).expect("tensor")))
        .collect();
    let dir = TempDir::new("smollm2-bf16");
    write_hf(dir.path(), &gguf.config, &tensors, WeightDtype::BF16, 3).expect("write");
    let hf = Checkpoint::open(dir.path()).expect("open the written folder");
    assert_eq!(hf.config, gguf.config);
    for (name, t) in &tensors {
        let loaded = hf.tensor(name).expect("tensor");
        let same = loaded
            .as_slice()
            .iter()
            .zip(t.as_slice())
            .all(|(&a, &b)| a == WeightDtype::BF16.round(b));
        assert!(same, "{name}");
    }
}
