//! Hugging Face folders: a tiny fixture written here (f32, f16, bf16; one file or shards)
//! loads to the values written, the same model in GGUF loads to the same tensors, and every
//! bad folder is an error naming the file and the field or tensor.

mod checkpoint_support;

use std::path::Path;

use checkpoint_support::{TempDir, tiny_config, tiny_gguf, tiny_tensors};
use fastlibra_kernels::checkpoint::hf::{CONFIG_FILE, INDEX_FILE, WEIGHTS_FILE, write_hf};
use fastlibra_kernels::checkpoint::{
    Checkpoint, CheckpointError, Format, LlamaConfig, Tensor, names,
};
use fastlibra_kernels::peft::WeightDtype;

fn write_tiny(
    dir: &Path,
    config: &LlamaConfig,
    dtype: WeightDtype,
    shards: usize,
) -> Vec<(String, Tensor)> {
    let tensors = tiny_tensors(config, 11);
    write_hf(dir, config, &tensors, dtype, shards).expect("write fixture");
    tensors
}

#[test]
fn fixtures_in_every_dtype_and_sharding_load_to_what_was_written() {
    for (dtype, shards) in [
        (WeightDtype::F32, 1),
        (WeightDtype::F16, 1),
        (WeightDtype::BF16, 3),
        (WeightDtype::F32, 4),
    ] {
        let config = tiny_config(shards == 1);
        let dir = TempDir::new("hf-fixture");
        let tensors = write_tiny(dir.path(), &config, dtype, shards);
        assert_eq!(dir.path().join(INDEX_FILE).is_file(), shards > 1);
        let ckpt = Checkpoint::open(dir.path()).expect("open");
        assert_eq!(Checkpoint::read_config(dir.path()).expect("config"), config);
        assert_eq!(ckpt.format, Format::HuggingFace);
        assert_eq!(ckpt.config, config);
        assert!(ckpt.gguf.is_none());
        for (name, t) in &tensors {
            let loaded = ckpt.tensor(name).expect("tensor");
            let rounded: Vec<f32> = t.as_slice().iter().map(|&v| dtype.round(v)).collect();
            assert_eq!((loaded.rows, loaded.cols), (t.rows, t.cols), "{name}");
            assert!(loaded.as_slice() == rounded.as_slice(), "{dtype} {name}");
            assert_eq!(loaded.data.is_mapped(), dtype == WeightDtype::F32, "{name}");
        }
        if config.tied_embeddings {
            let head = ckpt.tensor(names::LM_HEAD).expect("tied head");
            let embed = ckpt.tensor(names::EMBED).expect("embed");
            assert_eq!(head.as_slice().as_ptr(), embed.as_slice().as_ptr());
        }
    }
}

#[test]
fn the_same_model_in_gguf_and_hugging_face_loads_to_identical_tensors() {
    for tied in [true, false] {
        let config = tiny_config(tied);
        let dir = TempDir::new("hf-vs-gguf");
        let hf = dir.path().join("hf");
        let tensors = write_tiny(&hf, &config, WeightDtype::F32, 2);
        let gguf = dir.path().join("tiny.gguf");
        std::fs::write(&gguf, tiny_gguf(&config, &tensors)).expect("write gguf");
        let (a, b) = (
            Checkpoint::open(&hf).expect("hf"),
            Checkpoint::open(&gguf).expect("gguf"),
        );
        assert_eq!(a.config, b.config);
        assert_eq!(a.tensor_names(), b.tensor_names());
        for name in a.tensor_names() {
            let (x, y) = (a.tensor(&name).expect("hf"), b.tensor(&name).expect("gguf"));
            assert!(
                x.as_slice() == y.as_slice() && (x.rows, x.cols) == (y.rows, y.cols),
                "{name}"
            );
        }
    }
}

/// A tiny f32 folder after `edit` changed its `config.json` (as JSON); the error opening it.
fn open_with_config(
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> CheckpointError {
    let dir = TempDir::new("hf-config");
    write_tiny(dir.path(), &tiny_config(true), WeightDtype::F32, 1);
    let path = dir.path().join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).expect("read config");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    edit(value.as_object_mut().expect("object"));
    std::fs::write(&path, value.to_string()).expect("write config");
    let err = Checkpoint::open(dir.path()).expect_err("must be refused");
    assert!(err.to_string().contains(CONFIG_FILE), "{err}");
    let quick = Checkpoint::read_config(dir.path()).expect_err("refused without loading too");
    assert_eq!(quick.to_string(), err.to_string());
    err
}

fn field_of(err: &CheckpointError) -> &str {
    match err {
        CheckpointError::Unsupported { field, .. }
        | CheckpointError::MissingField { field, .. }
        | CheckpointError::InvalidField { field, .. }
        | CheckpointError::Corrupt { field, .. } => field,
        other => panic!("no field in {other:?}"),
    }
}

type ConfigEdit = Box<dyn FnOnce(&mut serde_json::Map<String, serde_json::Value>)>;

#[test]
fn config_problems_name_the_field() {
    use serde_json::json;
    let cases: Vec<(&str, ConfigEdit)> = vec![
        (
            "rope_scaling",
            Box::new(|m| {
                drop(m.insert(
                    "rope_scaling".into(),
                    json!({"rope_type": "llama3", "factor": 8.0}),
                ))
            }),
        ),
        (
            "architectures",
            Box::new(|m| drop(m.insert("architectures".into(), json!(["MistralForCausalLM"])))),
        ),
        (
            "model_type",
            Box::new(|m| drop(m.insert("model_type".into(), json!("qwen2")))),
        ),
        ("hidden_size", Box::new(|m| drop(m.remove("hidden_size")))),
        (
            "num_hidden_layers",
            Box::new(|m| drop(m.insert("num_hidden_layers".into(), json!(-2)))),
        ),
        (
            "num_key_value_heads",
            Box::new(|m| drop(m.insert("num_key_value_heads".into(), json!(3)))),
        ),
        (
            "attention_bias",
            Box::new(|m| drop(m.insert("attention_bias".into(), json!(true)))),
        ),
        (
            "hidden_act",
            Box::new(|m| drop(m.insert("hidden_act".into(), json!("gelu")))),
        ),
        (
            "tie_word_embeddings",
            Box::new(|m| drop(m.insert("tie_word_embeddings".into(), json!("yes")))),
        ),
        (
            "rms_norm_eps",
            Box::new(|m| drop(m.insert("rms_norm_eps".into(), json!(0.0)))),
        ),
    ];
    for (field, edit) in cases {
        let err = open_with_config(edit);
        assert_eq!(field_of(&err), field, "{err}");
    }
}

#[test]
fn optional_fields_take_transformers_defaults() {
    let dir = TempDir::new("hf-defaults");
    write_tiny(dir.path(), &tiny_config(false), WeightDtype::F32, 1);
    let path = dir.path().join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).expect("read");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    let m = value.as_object_mut().expect("object");
    for key in [
        "head_dim",
        "rope_theta",
        "rms_norm_eps",
        "tie_word_embeddings",
        "_name_or_path",
    ] {
        m.remove(key);
    }
    m.insert(
        "rope_scaling".into(),
        serde_json::json!({"rope_type": "default"}),
    );
    std::fs::write(&path, value.to_string()).expect("write");
    let config = Checkpoint::open(dir.path()).expect("open").config;
    assert_eq!(
        (config.head_dim, config.rope_theta, config.rms_eps),
        (16, 10_000.0, 1e-6)
    );
    assert!(!config.tied_embeddings);
    assert!(
        config.name.starts_with("fastlibra-hf-defaults"),
        "{}",
        config.name
    );
}

#[test]
fn bad_json_is_named() {
    let dir = TempDir::new("hf-json");
    write_tiny(dir.path(), &tiny_config(true), WeightDtype::F32, 1);
    std::fs::write(dir.path().join(CONFIG_FILE), "{\"hidden_size\": 64,").expect("write");
    let err = Checkpoint::open(dir.path()).expect_err("bad json");
    assert!(
        matches!(&err, CheckpointError::Corrupt { field, .. } if field == "JSON"),
        "{err}"
    );
}

#[test]
fn missing_or_misshapen_tensors_are_named() {
    let config = tiny_config(true);
    let dir = TempDir::new("hf-missing");
    let mut tensors = tiny_tensors(&config, 12);
    tensors.retain(|(n, _)| n != "model.layers.1.mlp.gate_proj.weight");
    write_hf(dir.path(), &config, &tensors, WeightDtype::F32, 1).expect("write");
    let err = Checkpoint::open(dir.path()).expect_err("missing tensor");
    assert!(
        matches!(&err, CheckpointError::MissingTensor { tensor, .. } if tensor == "model.layers.1.mlp.gate_proj.weight"),
        "{err}"
    );

    let other = LlamaConfig {
        ffn: 96,
        ..config.clone()
    };
    let dir = TempDir::new("hf-shape");
    write_hf(
        dir.path(),
        &other,
        &tiny_tensors(&config, 12),
        WeightDtype::F32,
        1,
    )
    .expect("write");
    let err = Checkpoint::open(dir.path()).expect_err("shape");
    let msg = err.to_string();
    assert!(
        matches!(err, CheckpointError::ShapeMismatch { .. }) && msg.contains(WEIGHTS_FILE),
        "{msg}"
    );
    assert!(msg.contains("mlp") && msg.contains("96"), "{msg}");
}

#[test]
fn unsupported_dtypes_and_broken_files_are_named() {
    let config = tiny_config(true);
    let dir = TempDir::new("hf-dtype");
    let mut tensors = Vec::new();
    let mut buffers = Vec::new();
    for (name, t) in tiny_tensors(&config, 13) {
        let shape = if t.rows == 1 {
            vec![t.cols]
        } else {
            vec![t.rows, t.cols]
        };
        let (dtype, bytes) = if name == names::NORM {
            (
                safetensors::Dtype::I32,
                t.as_slice()
                    .iter()
                    .flat_map(|&v| (v as i32).to_le_bytes())
                    .collect(),
            )
        } else {
            (
                safetensors::Dtype::F32,
                t.as_slice()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )
        };
        buffers.push((name, dtype, shape, bytes));
    }
    for (name, dtype, shape, bytes) in &buffers {
        tensors.push((
            name.as_str(),
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).expect("view"),
        ));
    }
    write_hf(dir.path(), &config, &[], WeightDtype::F32, 1).expect("config");
    let weights = dir.path().join(WEIGHTS_FILE);
    safetensors::serialize_to_file(tensors, None, &weights).expect("write");
    let err = Checkpoint::open(dir.path()).expect_err("i32");
    assert!(
        err.to_string().contains("model.norm.weight") && err.to_string().contains("I32"),
        "{err}"
    );

    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = Checkpoint::open(dir.path()).expect_err("truncated");
    assert!(
        matches!(&err, CheckpointError::Corrupt { field, .. } if field == "safetensors header"),
        "{err}"
    );
    std::fs::remove_file(&weights).expect("remove");
    assert!(matches!(
        Checkpoint::open(dir.path()),
        Err(CheckpointError::NotACheckpoint { .. })
    ));
    std::fs::remove_file(dir.path().join(CONFIG_FILE)).expect("remove");
    let err = Checkpoint::open(dir.path()).expect_err("no config");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn a_broken_index_is_named() {
    let config = tiny_config(true);
    let dir = TempDir::new("hf-index");
    write_tiny(dir.path(), &config, WeightDtype::F32, 2);
    let index_path = dir.path().join(INDEX_FILE);
    let text = std::fs::read_to_string(&index_path).expect("index");
    let mut index: serde_json::Value = serde_json::from_str(&text).expect("json");
    let map = index["weight_map"].as_object_mut().expect("map");
    let first = map
        .values()
        .next()
        .and_then(|v| v.as_str())
        .expect("a shard")
        .to_string();
    let other = map
        .values()
        .filter_map(|v| v.as_str())
        .find(|f| *f != first)
        .expect("two shards")
        .to_string();
    // Point a tensor at the wrong shard.
    map.insert(
        names::EMBED.into(),
        if map[names::EMBED] == first.as_str() {
            other.clone()
        } else {
            first.clone()
        }
        .into(),
    );
    std::fs::write(&index_path, index.to_string()).expect("write");
    let err = Checkpoint::open(dir.path()).expect_err("wrong shard");
    assert!(
        matches!(&err, CheckpointError::MissingTensor { tensor, .. } if tensor == names::EMBED),
        "{err}"
    );

    std::fs::remove_file(dir.path().join(&other)).expect("remove a shard");
    let err = Checkpoint::open(dir.path()).expect_err("missing shard");
    assert!(
        matches!(&err, CheckpointError::Io { path, .. } if path.ends_with(&other)),
        "{err}"
    );
    std::fs::write(
        &index_path,
        r#"{"weight_map": {"x": "../escape.safetensors"}}"#,
    )
    .expect("write");
    let err = Checkpoint::open(dir.path()).expect_err("escape");
    assert!(err.to_string().contains("weight_map.x"), "{err}");
}
