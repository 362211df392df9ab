//! PEFT adapters end to end on a tiny model: write → load round trips for every dtype, exact
//! paging round trips whose page count matches the allocator's geometry, and a typed error
//! (never a panic) for every kind of malformed folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fastlibra_alloc::geometry::PageGeometry;
use fastlibra_kernels::peft::{
    Adapter, AdapterConfig, AdapterShape, CONFIG_FILE, Matrix, PeftError, WEIGHTS_FILE,
    WeightDtype, load_peft, tensor_name, write_peft,
};
use fastlibra_kernels::{LoraTarget, LoraTargets, ModelSpec};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// 2 layers, hidden 64, 4 heads, 2 KV heads (head 16), FFN 128: the fuzz target's model.
fn tiny() -> ModelSpec {
    fastlibra_kernels::peft::fuzz_entry::tiny_model()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("peft-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// An adapter whose every value differs and depends on layer, target, matrix and index.
fn adapter(rank: u32, targets: LoraTargets, dtype: WeightDtype) -> Adapter {
    let shape = AdapterShape {
        rank,
        alpha: 2.0 * rank as f32,
        targets,
        dtype,
    };
    Adapter::from_fn(&tiny(), shape, |layer, target, matrix, i| {
        let m = if matrix == Matrix::A { 1.0 } else { -1.0 };
        m * (layer as f32 + 1.0) * ((target as u8 as f32) + 0.5) * (i as f32 * 0.37).sin()
    })
    .expect("valid adapter")
}

const DTYPES: [WeightDtype; 3] = [WeightDtype::F32, WeightDtype::F16, WeightDtype::BF16];

#[test]
fn write_then_load_round_trips_each_dtype() {
    for dtype in DTYPES {
        let dir = scratch(&format!("round-{dtype}"));
        let original = adapter(3, LoraTargets::ALL_LINEAR, dtype);
        write_peft(&dir, &original, "tiny").expect("write");
        let loaded = load_peft(&dir, &tiny()).expect("load");
        assert_eq!(loaded, original, "{dtype}");
        assert_eq!(loaded.rank(), 3);
        assert_eq!(loaded.scaling(), 2.0);
        assert_eq!(loaded.dtype(), dtype);
        assert_eq!(loaded.base_model(), "tiny");
        let q = loaded.pair(1, LoraTarget::Q).expect("q in layer 1");
        assert_eq!((q.input(), q.output()), (64, 64));
        let k = loaded.pair(0, LoraTarget::K).expect("k");
        assert_eq!((k.input(), k.output(), k.b().len()), (64, 32, 32 * 3));
        let down = loaded.pair(0, LoraTarget::Down).expect("down");
        assert_eq!(
            (down.input(), down.output(), down.a().len()),
            (128, 64, 3 * 128)
        );

        let config = AdapterConfig::read(&dir).expect("config");
        assert_eq!(config.rank, 3);
        assert_eq!(config.alpha, 6.0);
        assert_eq!(config.targets, LoraTargets::ALL_LINEAR);
        assert_eq!(config.task_type.as_deref(), Some("CAUSAL_LM"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
        assert_eq!(json["peft_type"], "LORA");
        assert_eq!(json["bias"], "none");
        assert_eq!(json["fan_in_fan_out"], false);
        assert_eq!(json["target_modules"][0], "q_proj");
        let bytes = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let format = meta.metadata().as_ref().and_then(|m| m.get("format"));
        assert_eq!(format.map(String::as_str), Some("pt"));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let a = st
            .tensor(&tensor_name(0, LoraTarget::O, Matrix::A))
            .unwrap();
        assert_eq!(a.shape(), [3, 64]);
        assert_eq!(st.len(), 2 * 7 * 2);
    }
}

#[test]
fn config_accepts_all_linear_and_short_lists() {
    let path = Path::new("adapter_config.json");
    let all = r#"{"r": 4, "lora_alpha": 8, "target_modules": "all-linear", "peft_type": "LORA",
                  "base_model_name_or_path": "m", "bias": "none", "fan_in_fan_out": false,
                  "task_type": "CAUSAL_LM", "lora_dropout": 0.05}"#;
    let c = AdapterConfig::parse(all, path).expect("all-linear");
    assert_eq!(c.targets, LoraTargets::ALL_LINEAR);
    let list = r#"{"r": 4, "lora_alpha": 8.5, "target_modules": ["v_proj", "q_proj"],
                   "peft_type": "LORA"}"#;
    let c = AdapterConfig::parse(list, path).expect("list");
    assert_eq!(
        c.targets,
        LoraTargets::NONE.with(LoraTarget::Q).with(LoraTarget::V)
    );
    assert_eq!(c.alpha, 8.5);
}

#[test]
fn paged_round_trip_is_exact_and_matches_geometry() {
    let spec = tiny();
    for dtype in DTYPES {
        for targets in [LoraTargets::ATTENTION, LoraTargets::ALL_LINEAR] {
            let a = adapter(5, targets, dtype);
            let spec_dtype = ModelSpec {
                dtype_bytes: dtype.bytes() as u32,
                ..spec.clone()
            };
            let bytes = spec_dtype.lora_bytes(5, targets);
            assert_eq!(a.bytes(), bytes);
            let slice = spec_dtype.lora_bytes_per_rank(targets);
            for page_bytes in [64, 1000, slice, 4096, 1 << 20] {
                let paged = a.paged(page_bytes).expect("page");
                let geometry = PageGeometry {
                    page_bytes,
                    block_tokens: 16,
                    pages_per_block: 1,
                };
                assert_eq!(paged.pages.len() as u32, geometry.pages_for(bytes));
                assert_eq!(paged.layout.slice_bytes() as u64, slice);
                assert!(paged.pages.iter().all(|p| p.len() as u64 == page_bytes));
                assert_eq!(
                    paged.to_adapter().expect("unpage"),
                    a,
                    "{dtype} {page_bytes}"
                );
            }
        }
    }
}

#[test]
fn default_page_is_the_model_kv_block() {
    let spec = tiny();
    let g = PageGeometry::for_model(spec.kv_bytes_per_token_per_gpu(), 16, None).unwrap();
    let a = adapter(8, LoraTargets::ALL_LINEAR, WeightDtype::BF16);
    let paged = a.paged(g.page_bytes).unwrap();
    let bytes = spec.lora_bytes(8, LoraTargets::ALL_LINEAR);
    assert_eq!(paged.pages.len() as u32, g.pages_for(bytes));
}

#[test]
fn a_slice_is_a_row_of_a_and_a_column_of_b() {
    let a = adapter(4, LoraTargets::ATTENTION, WeightDtype::F32);
    let paged = a.paged(100).unwrap();
    let slice = paged.read_slice(2).unwrap();
    assert_eq!(slice.len(), paged.layout.slice_elements());
    let q = a.pair(0, LoraTarget::Q).unwrap();
    assert_eq!(&slice[..64], &q.a()[2 * 64..3 * 64]);
    let b_col: Vec<f32> = (0..64).map(|o| q.b()[o * 4 + 2]).collect();
    assert_eq!(&slice[64..128], b_col.as_slice());
    let pages = paged.layout.slice_pages(2);
    assert_eq!(pages.start, paged.layout.slice_range(2).start / 100);
    assert!(matches!(paged.read_slice(4), Err(PeftError::Paging(_))));
    assert!(matches!(a.paged(0), Err(PeftError::Paging(_))));
    let mut short = paged.clone();
    short.pages.pop();
    assert!(matches!(short.to_adapter(), Err(PeftError::Paging(_))));
    let mut zero = paged.clone();
    zero.layout.page_bytes = 0;
    assert!(matches!(zero.read_slice(0), Err(PeftError::Paging(_))));
}

#[test]
fn from_parts_checks_lengths() {
    let shape = AdapterShape {
        rank: 1,
        alpha: 1.0,
        targets: LoraTargets::NONE.with(LoraTarget::Q),
        dtype: WeightDtype::F32,
    };
    let good = vec![vec![(vec![0.5; 64], vec![0.25; 64])]; 2];
    assert!(Adapter::from_parts(&tiny(), shape, good).is_ok());
    let bad = vec![vec![(vec![0.5; 63], vec![0.25; 64])]; 2];
    assert!(matches!(
        Adapter::from_parts(&tiny(), shape, bad),
        Err(PeftError::Invalid(_))
    ));
    let zero = AdapterShape { rank: 0, ..shape };
    assert!(Adapter::from_fn(&tiny(), zero, |_, _, _, _| 0.0).is_err());
}

// ---- malformed input ----

/// A valid attention-only bf16 adapter folder of rank 2.
fn valid(name: &str) -> PathBuf {
    let dir = scratch(name);
    write_peft(
        &dir,
        &adapter(2, LoraTargets::ATTENTION, WeightDtype::BF16),
        "tiny",
    )
    .unwrap();
    dir
}

fn load_err(dir: &Path) -> PeftError {
    load_peft(dir, &tiny()).expect_err("malformed adapter loaded")
}

fn set_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(CONFIG_FILE);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

/// Rewrites the weights file with `edit` applied to its tensor list.
fn set_tensors(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut list: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut list);
    let views = list
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

fn names_file(e: &PeftError, file: &str) {
    assert!(e.to_string().contains(file), "{e}");
}

#[test]
fn missing_files_are_io_errors() {
    let dir = scratch("missing");
    let e = load_err(&dir);
    assert!(matches!(e, PeftError::Io { .. }), "{e}");
    names_file(&e, CONFIG_FILE);
    let dir = valid("missing-weights");
    std::fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, PeftError::Io { .. }), "{e}");
    names_file(&e, WEIGHTS_FILE);
}

#[test]
fn bad_json_and_bad_fields() {
    let dir = valid("bad-json");
    std::fs::write(dir.join(CONFIG_FILE), "{\"r\": 2, ").unwrap();
    assert!(matches!(load_err(&dir), PeftError::Json { .. }));
    std::fs::write(dir.join(CONFIG_FILE), "{\"r\": \"two\"}").unwrap();
    assert!(matches!(load_err(&dir), PeftError::Json { .. }));

    let cases: [(&str, serde_json::Value, &str); 6] = [
        ("peft_type", "PREFIX_TUNING".into(), "peft_type"),
        ("r", 0.into(), "r"),
        (
            "target_modules",
            serde_json::json!(["q_proj", "lm_head"]),
            "target_modules",
        ),
        ("target_modules", ".*proj".into(), "target_modules"),
        ("bias", "all".into(), "bias"),
        ("fan_in_fan_out", true.into(), "fan_in_fan_out"),
    ];
    for (key, value, field) in cases {
        let dir = valid(&format!("field-{key}"));
        set_config(&dir, |v| v[key] = value);
        match load_err(&dir) {
            PeftError::ConfigField { field: f, .. } => assert_eq!(f, field),
            e => panic!("{key}: {e}"),
        }
    }
}

#[test]
fn truncated_or_garbage_safetensors() {
    let dir = valid("truncated");
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 4, 8, 40, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = load_err(&dir);
        assert!(matches!(e, PeftError::Safetensors { .. }), "cut {cut}: {e}");
        names_file(&e, WEIGHTS_FILE);
    }
    std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\xffgarbage").unwrap();
    assert!(matches!(load_err(&dir), PeftError::Safetensors { .. }));
}

#[test]
fn wrong_or_mixed_dtype() {
    let dir = valid("dtype-i32");
    set_tensors(&dir, |list| {
        let t = &mut list[0];
        t.1 = Dtype::I16;
    });
    let e = load_err(&dir);
    assert!(matches!(e, PeftError::Dtype { .. }), "{e}");
    assert!(
        e.to_string().contains("base_model.model.model.layers."),
        "{e}"
    );

    let dir = valid("dtype-mixed");
    set_tensors(&dir, |list| list[3].1 = Dtype::F16);
    assert!(matches!(load_err(&dir), PeftError::Dtype { .. }));
}

#[test]
fn wrong_shape_and_rank() {
    let dir = valid("rank");
    set_config(&dir, |v| v["r"] = 3.into());
    match load_err(&dir) {
        PeftError::Shape {
            found, expected, ..
        } => assert_eq!((found[0], expected[0]), (2, 3)),
        e => panic!("{e}"),
    }
    let dir = valid("shape");
    let name = tensor_name(1, LoraTarget::K, Matrix::B);
    set_tensors(&dir, |list| {
        let t = list.iter_mut().find(|t| t.0 == name).unwrap();
        t.2 = vec![2, 32];
    });
    match load_err(&dir) {
        PeftError::Shape { tensor, .. } => assert_eq!(tensor, name),
        e => panic!("{e}"),
    }
}

#[test]
fn missing_and_unknown_tensors() {
    let dir = valid("missing-tensor");
    let name = tensor_name(1, LoraTarget::V, Matrix::A);
    set_tensors(&dir, |list| list.retain(|t| t.0 != name));
    match load_err(&dir) {
        PeftError::MissingTensor { tensor, .. } => assert_eq!(tensor, name),
        e => panic!("{e}"),
    }
    // The config claims all-linear, the file holds attention only.
    let dir = valid("claims-mlp");
    set_config(&dir, |v| v["target_modules"] = "all-linear".into());
    assert!(matches!(load_err(&dir), PeftError::MissingTensor { .. }));
    // The config claims q only, the file holds k, v, o too.
    let dir = valid("extra-target");
    set_config(&dir, |v| {
        v["target_modules"] = serde_json::json!(["q_proj"])
    });
    assert!(matches!(load_err(&dir), PeftError::UnknownTensor { .. }));
    let dir = valid("extra-name");
    set_tensors(&dir, |list| {
        list.push((
            "base_model.model.lm_head.weight".into(),
            Dtype::BF16,
            vec![2],
            vec![0; 4],
        ))
    });
    match load_err(&dir) {
        PeftError::UnknownTensor { tensor, .. } => {
            assert_eq!(tensor, "base_model.model.lm_head.weight")
        }
        e => panic!("{e}"),
    }
    // Layer count: a 2-layer adapter on a 1-layer model, and a 1-layer file for 2 layers.
    let dir = valid("layers");
    let one = ModelSpec {
        layers: 1,
        ..tiny()
    };
    assert!(matches!(
        load_peft(&dir, &one),
        Err(PeftError::UnknownTensor { .. })
    ));
    set_tensors(&dir, |list| list.retain(|t| !t.0.contains(".layers.1.")));
    assert!(matches!(load_err(&dir), PeftError::MissingTensor { .. }));
    set_tensors(&dir, |list| list.clear());
    assert!(matches!(load_err(&dir), PeftError::MissingTensor { .. }));
}
