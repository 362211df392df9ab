//! GGUF `llama` files as checkpoints: config from metadata, Hugging Face names and layout
//! (llama.cpp's Q/K row permutation undone), zero-copy F32, and every refusal named.

mod checkpoint_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use checkpoint_support::{
    TempDir, gguf_tensors, llama_metadata, tiny_config, tiny_gguf, tiny_tensors,
};
use fastlibra_kernels::checkpoint::gguf::write::{TensorToWrite, to_bytes};
use fastlibra_kernels::checkpoint::names::{self, LayerTensor};
use fastlibra_kernels::checkpoint::{
    Checkpoint, CheckpointError, Format, GgmlType, GgufValue, LlamaConfig, Tensor,
};

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

fn assert_same(a: &Tensor, b: &Tensor, name: &str) {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{name}");
    assert!(a.as_slice() == b.as_slice(), "{name}: values differ");
}

#[test]
fn a_tiny_gguf_loads_in_hugging_face_layout() {
    for tied in [true, false] {
        let config = tiny_config(tied);
        let tensors = tiny_tensors(&config, 3);
        let dir = TempDir::new("llama-gguf");
        let path = write(&dir, "tiny.gguf", &tiny_gguf(&config, &tensors));
        let ckpt = Checkpoint::open(&path).expect("open");
        assert_eq!(ckpt.config, config);
        assert_eq!(Checkpoint::read_config(&path).expect("config only"), config);
        assert_eq!(ckpt.format, Format::Gguf);
        assert!(ckpt.gguf.is_some());
        for (name, t) in &tensors {
            assert_same(&ckpt.tensor(name).expect("tensor"), t, name);
        }
        let head = ckpt.tensor(names::LM_HEAD).expect("lm_head");
        let head_source = if tied { names::EMBED } else { names::LM_HEAD };
        let original = &tensors
            .iter()
            .find(|(n, _)| n == head_source)
            .expect("in fixture")
            .1;
        assert_same(&head, original, "lm_head");
        let mut expected: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
        if tied {
            expected.push(names::LM_HEAD.into());
        }
        expected.sort();
        assert_eq!(ckpt.tensor_names(), expected);
    }
}

#[test]
fn f32_tensors_are_mapped_and_q_k_owned() {
    let config = tiny_config(true);
    let dir = TempDir::new("llama-map");
    let path = write(
        &dir,
        "tiny.gguf",
        &tiny_gguf(&config, &tiny_tensors(&config, 4)),
    );
    let ckpt = Checkpoint::open(&path).expect("open");
    assert!(ckpt.tensor(names::EMBED).expect("embed").data.is_mapped());
    assert!(
        ckpt.tensor(&LayerTensor::V.name(1))
            .expect("v")
            .data
            .is_mapped()
    );
    // Q and K are permuted back at load, so they are computed, not mapped.
    assert!(
        !ckpt
            .tensor(&LayerTensor::Q.name(0))
            .expect("q")
            .data
            .is_mapped()
    );
    let qk = config.layers * config.hidden * (config.q_dim() + config.kv_dim());
    assert_eq!(ckpt.owned_bytes(), qk * 4);
    let err = ckpt
        .tensor("model.layers.9.mlp.up_proj.weight")
        .expect_err("no layer 9");
    assert!(matches!(err, CheckpointError::UnknownTensor { .. }));
}

#[test]
fn quantised_and_half_tensors_are_dequantised_at_load() {
    let config = tiny_config(true);
    let tensors = tiny_tensors(&config, 5);
    let mut written = gguf_tensors(&config, &tensors);
    let up = written
        .iter_mut()
        .find(|t| t.name == "blk.0.ffn_up.weight")
        .expect("up");
    let values: Vec<f32> = up
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    up.ggml_type = GgmlType::F16;
    up.data = values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let down = written
        .iter_mut()
        .find(|t| t.name == "blk.1.ffn_down.weight")
        .expect("down");
    // Q8_0 with scale 1/64 and quants i − 64 (mod 256) for element i: values known exactly.
    let n = down.data.len() / 4;
    down.ggml_type = GgmlType::Q8_0;
    down.data = (0..n / 32)
        .flat_map(|b| {
            let mut block = half::f16::from_f32(1.0 / 64.0).to_le_bytes().to_vec();
            block.extend((0..32).map(|i| ((b * 32 + i) % 256) as u8));
            block
        })
        .collect();
    let dir = TempDir::new("llama-quant");
    let path = write(
        &dir,
        "tiny.gguf",
        &to_bytes(&llama_metadata(&config), &written),
    );
    let ckpt = Checkpoint::open(&path).expect("open");
    let up = ckpt.tensor(&LayerTensor::Up.name(0)).expect("up");
    let rounded: Vec<f32> = values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert!(up.as_slice() == rounded.as_slice());
    let down = ckpt.tensor(&LayerTensor::Down.name(1)).expect("down");
    let expect: Vec<f32> = (0..n)
        .map(|i| f32::from((i % 256) as u8 as i8) / 64.0)
        .collect();
    assert!(down.as_slice() == expect.as_slice());
}

#[test]
fn one_load_is_shared_within_a_process() {
    let config = tiny_config(true);
    let dir = TempDir::new("llama-shared");
    let path = write(
        &dir,
        "tiny.gguf",
        &tiny_gguf(&config, &tiny_tensors(&config, 6)),
    );
    let a = Checkpoint::open_shared(&path).expect("first");
    let b = Checkpoint::open_shared(&dir.path().join(".").join("tiny.gguf")).expect("second");
    assert!(Arc::ptr_eq(&a, &b));
    let q_a = a.tensor(&LayerTensor::Q.name(0)).expect("q");
    let q_b = b.tensor(&LayerTensor::Q.name(0)).expect("q");
    assert_eq!(q_a.as_slice().as_ptr(), q_b.as_slice().as_ptr());
    drop((a, b, q_a, q_b));
    let c = Checkpoint::open_shared(&path).expect("after all were dropped");
    assert_eq!(Arc::strong_count(&c), 1);
}

/// Opens a tiny file after `edit` changed its metadata and tensors; returns the error.
fn open_edited(
    edit: impl FnOnce(&mut Vec<(String, GgufValue)>, &mut Vec<TensorToWrite>),
) -> CheckpointError {
    let config = tiny_config(true);
    let mut metadata = llama_metadata(&config);
    let mut tensors = gguf_tensors(&config, &tiny_tensors(&config, 8));
    edit(&mut metadata, &mut tensors);
    let dir = TempDir::new("llama-bad");
    let path = write(&dir, "bad.gguf", &to_bytes(&metadata, &tensors));
    let err = Checkpoint::open(&path).expect_err("must be refused");
    assert!(err.to_string().contains("bad.gguf"), "{err}");
    let quick = Checkpoint::read_config(&path).expect_err("refused without loading too");
    assert_eq!(quick.to_string(), err.to_string());
    err
}

fn set(metadata: &mut [(String, GgufValue)], key: &str, value: GgufValue) {
    metadata.iter_mut().find(|(k, _)| k == key).expect("key").1 = value;
}

#[test]
fn metadata_problems_name_the_key() {
    let err = open_edited(|m, _| set(m, "general.architecture", GgufValue::String("gpt2".into())));
    assert!(
        matches!(&err, CheckpointError::Unsupported { field, .. } if field == "general.architecture"),
        "{err}"
    );
    let err = open_edited(|m, _| m.retain(|(k, _)| k != "llama.block_count"));
    assert!(
        matches!(&err, CheckpointError::MissingField { field, .. } if field == "llama.block_count"),
        "{err}"
    );
    let err = open_edited(|m, _| set(m, "llama.block_count", GgufValue::String("2".into())));
    assert!(
        matches!(&err, CheckpointError::InvalidField { field, .. } if field == "llama.block_count"),
        "{err}"
    );
    let err = open_edited(|m, _| set(m, "llama.attention.head_count_kv", GgufValue::U32(3)));
    assert!(
        err.to_string().contains("not a multiple of 3 KV heads"),
        "{err}"
    );
    let err = open_edited(|m, _| set(m, "llama.attention.head_count", GgufValue::U32(0)));
    assert!(
        matches!(&err, CheckpointError::InvalidField { .. }),
        "{err}"
    );
    let err = open_edited(|m, _| {
        m.push((
            "llama.rope.scaling.type".into(),
            GgufValue::String("yarn".into()),
        ))
    });
    assert!(err.to_string().contains("RoPE scaling `yarn`"), "{err}");
    let err = open_edited(|m, _| set(m, "llama.rope.dimension_count", GgufValue::U32(8)));
    assert!(
        err.to_string().contains("llama.rope.dimension_count"),
        "{err}"
    );
}

#[test]
fn tensor_problems_name_the_tensor() {
    let err = open_edited(|_, t| t.retain(|t| t.name != "blk.1.ffn_up.weight"));
    assert!(
        matches!(&err, CheckpointError::MissingTensor { tensor, .. } if tensor == "blk.1.ffn_up.weight"),
        "{err}"
    );
    let err = open_edited(|_, t| {
        let norm = t
            .iter_mut()
            .find(|t| t.name == "output_norm.weight")
            .expect("norm");
        *norm = TensorToWrite::f32("output_norm.weight", 1, 32, &[1.0; 32]);
    });
    assert!(
        matches!(&err, CheckpointError::ShapeMismatch { tensor, .. } if tensor == "output_norm.weight"),
        "{err}"
    );
    let err = open_edited(|_, t| {
        let up = t
            .iter_mut()
            .find(|t| t.name == "blk.0.ffn_up.weight")
            .expect("up");
        up.ggml_type = GgmlType::from_id(6).expect("Q5_0");
        up.data = vec![0; 128 * 64 / 32 * 22];
    });
    assert!(err.to_string().contains("type Q5_0"), "{err}");
    let err = open_edited(|_, t| t.push(TensorToWrite::f32("rope_freqs.weight", 1, 8, &[1.0; 8])));
    assert!(err.to_string().contains("rope_freqs.weight"), "{err}");
    let err =
        open_edited(|_, t| t.push(TensorToWrite::f32("blk.0.attn_q.bias", 1, 64, &[0.0; 64])));
    assert!(err.to_string().contains("biases"), "{err}");
}

#[test]
fn a_path_that_is_nothing_is_refused() {
    let err = Checkpoint::open(Path::new("no/such/checkpoint")).expect_err("missing");
    assert!(
        matches!(err, CheckpointError::NotACheckpoint { .. }),
        "{err}"
    );
    let dir = TempDir::new("llama-text");
    let path = write(&dir, "notes.txt", b"GG");
    assert!(matches!(
        Checkpoint::open(&path),
        Err(CheckpointError::Truncated { .. })
    ));
    let path = write(&dir, "notes2.txt", b"hello, this is not a model at all");
    assert!(
        Checkpoint::open(&path)
            .expect_err("text")
            .to_string()
            .contains("magic")
    );
}

#[test]
fn model_spec_carries_the_shape_in_f32() {
    let config: LlamaConfig = tiny_config(true);
    let spec = config.model_spec();
    assert_eq!(spec.dtype_bytes, 4);
    assert_eq!(spec.kv_bytes_per_token(), (2 * 2 * 2 * 16 * 4) as u64);
    assert_eq!(spec.head_dim, 16);
    assert_eq!(spec.weight_bytes(), config.params() * 4);
}
