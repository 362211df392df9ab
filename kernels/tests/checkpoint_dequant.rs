//! Every dequantiser against the `gguf` Python package's `gguf.quants.dequantize`, on real
//! tensors: all 272 tensors of the SmolLM2 file (Q4_1, Q8_0, F32), and real tensors of it
//! quantised to F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K, plus random blocks of each
//! type (`scripts/refs/dequant.py` writes them and the references). Equality is exact: bit for
//! bit.
//!
//! Needs `scripts/fetch-model.sh` and `scripts/py-env.sh`; skips with one line when they are
//! missing, fails under `FASTLIBRA_REQUIRE_MODEL=1`.

mod checkpoint_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use checkpoint_support::{TempDir, model, python, repo_root};
use fastlibra_kernels::checkpoint::GgufFile;

/// The hash `dequant.py` writes: wrapping Σ bits(x_i) · (2i + 1) over u64.
fn bits_hash(values: &[f32]) -> u64 {
    values.iter().enumerate().fold(0u64, |acc, (i, v)| {
        acc.wrapping_add(u64::from(v.to_bits()).wrapping_mul(2 * i as u64 + 1))
    })
}

/// Per type: tensors, elements, elements that differ, largest absolute difference.
#[derive(Default)]
struct Tally {
    tensors: usize,
    elements: usize,
    differ: usize,
    max_abs: f32,
}

fn compare(stats: &mut Tally, ours: &[f32], reference: &[f32]) {
    stats.tensors += 1;
    stats.elements += ours.len();
    for (a, b) in ours.iter().zip(reference) {
        if a.to_bits() != b.to_bits() {
            stats.differ += 1;
            stats.max_abs = stats.max_abs.max((a - b).abs());
        }
    }
}

fn report(title: &str, tallies: &BTreeMap<String, Tally>) {
    println!("{title}");
    println!(
        "  {:<6} {:>7} {:>11} {:>7} {:>9}",
        "type", "tensors", "elements", "differ", "max |d|"
    );
    for (ty, t) in tallies {
        println!(
            "  {ty:<6} {:>7} {:>11} {:>7} {:>9.2e}",
            t.tensors, t.elements, t.differ, t.max_abs
        );
    }
}

fn run_reference(python: &Path, model: &Path, out: &Path) {
    let script = repo_root().join("scripts/refs/dequant.py");
    let run = Command::new(python)
        .arg(&script)
        .arg(model)
        .arg(out)
        .output()
        .expect("run python");
    assert!(
        run.status.success(),
        "dequant.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn dequantisers_match_gguf_py_bit_for_bit() {
    let test = "dequantisers_match_gguf_py_bit_for_bit";
    let (Some(model), Some(python)) = (model(test), python(test)) else {
        return;
    };
    let dir = TempDir::new("dequant-refs");
    run_reference(&python, &model, dir.path());

    // The model's own tensors: a hash of each, and full values for one of each type.
    let file = GgufFile::open(&model).expect("model");
    let hashes: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("model_ref.json")).expect("hashes"),
    )
    .expect("json");
    let full = GgufFile::open(&dir.path().join("model_ref.gguf")).expect("full refs");
    let mut model_tally: BTreeMap<String, Tally> = BTreeMap::new();
    assert_eq!(hashes.len(), file.tensors().len());
    for (info, reference) in file.tensors().iter().zip(&hashes) {
        assert_eq!(reference["name"].as_str(), Some(info.name.as_str()));
        let ours = file.dequantize(info).expect("dequantise");
        let expect: u64 = reference["bits_hash"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .expect("hash");
        let stats = model_tally.entry(info.ggml_type.to_string()).or_default();
        stats.tensors += 1;
        stats.elements += ours.len();
        if bits_hash(&ours) != expect {
            stats.differ += 1;
        }
        if let Some(r) = full.tensors().iter().find(|t| t.name == info.name) {
            let mut one = Tally::default();
            compare(&mut one, &ours, &full.dequantize(r).expect("reference"));
            assert_eq!((one.elements, one.differ), (ours.len(), 0), "{}", info.name);
        }
    }
    report(
        "SmolLM2 tensors vs gguf.quants.dequantize (differ = tensors whose hash differs):",
        &model_tally,
    );

    // Real tensors quantised to every type, and random blocks.
    let quants = GgufFile::open(&dir.path().join("quants.gguf")).expect("quants");
    let refs = GgufFile::open(&dir.path().join("quants_ref.gguf")).expect("quant refs");
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for info in quants.tensors() {
        let r = refs
            .tensors()
            .iter()
            .find(|t| t.name == info.name)
            .expect("a reference per tensor");
        let (ours, reference) = (
            quants.dequantize(info).expect("ours"),
            refs.dequantize(r).expect("ref"),
        );
        assert_eq!(ours.len(), reference.len(), "{}", info.name);
        compare(
            tallies.entry(info.ggml_type.to_string()).or_default(),
            &ours,
            &reference,
        );
    }
    report(
        "quantised real tensors and random blocks vs gguf.quants.dequantize:",
        &tallies,
    );
    let types: Vec<&str> = tallies.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        [
            "BF16", "F16", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "Q8_0"
        ]
    );
    for (ty, t) in model_tally.iter().chain(&tallies) {
        assert_eq!(
            t.differ, 0,
            "{ty}: {} elements differ, max {}",
            t.differ, t.max_abs
        );
    }
}
