//! The `fastlibra` commands on the real SmolLM2 checkpoint (F32 file), end to end:
//!
//! - `generate`: greedy output is llama.cpp's greedy tokens, a seed makes sampling
//!   reproducible;
//! - `adapters synth --model PATH`: adapters of the checkpoint's shapes; converted to a GGUF
//!   LoRA (`scripts/refs/lora_logits.py`), llama.cpp's logits with it equal the CPU model's
//!   with the PEFT folder within 1e-2, and differ from the base model's;
//! - `bench --backend cpu --model PATH --verify`: the real model in the shards, cached-prefix
//!   logits equal recomputed ones;
//! - bad input (a truncated file, an adapter of another shape, a prompt longer than the
//!   context): a clear error naming the file and the field, no panic.
//!
//! Missing model, Python environment or reference file: a failure under
//! `FASTLIBRA_REQUIRE_MODEL=1`, a skip line otherwise.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fastlibra_kernels::checkpoint::locate;
use fastlibra_kernels::generate::{LoadedModel, Sequence};
use serde_json::Value;

const F32_FILE: &str = "SmolLM2-135M-Instruct.F32.gguf";
const HOW: &str = "run scripts/py-env.sh, scripts/fetch-model.sh, then scripts/refs/all.sh";

fn scratch(name: &str) -> PathBuf {
    support::scratch("real-model", name)
}

fn present(test: &str, path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    assert!(
        !locate::model_required(),
        "{test}: {} is missing and FASTLIBRA_REQUIRE_MODEL=1 ({HOW})",
        path.display()
    );
    eprintln!("skip {test}: {} is missing ({HOW})", path.display());
    false
}

fn f32_model(test: &str) -> Option<PathBuf> {
    let path = locate::model_dir().unwrap_or_default().join(F32_FILE);
    present(test, &path).then_some(path)
}

fn refs_dir() -> PathBuf {
    std::env::var_os("FASTLIBRA_REFS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| locate::cache_dir().map(|c| c.join("refs")))
        .unwrap_or_default()
}

fn reference(test: &str, name: &str) -> Option<Value> {
    let path = refs_dir().join(name);
    if !present(test, &path) {
        return None;
    }
    serde_json::from_str(&support::read(&path)).ok()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

fn fastlibra(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run fastlibra")
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids `generate --show-ids` printed on stderr.
fn shown_ids(out: &Output) -> Vec<u32> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ids: "))
        .unwrap_or_else(|| panic!("no ids line in: {stderr}"));
    serde_json::from_str(line).expect("a JSON-like list of ids")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn generate_is_greedy_like_llama_cpp_and_reproducible_with_a_seed() {
    let test = "generate_is_greedy_like_llama_cpp_and_reproducible_with_a_seed";
    let (Some(model), Some(doc)) = (f32_model(test), reference(test, "logits_f32.json")) else {
        return;
    };
    let dir = scratch("generate");
    let m = path_str(&model);
    let sentence = doc["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .find(|p| p["name"] == "sentence")
        .expect("the sentence prompt");
    let text = sentence["text"].as_str().expect("text");
    let greedy = ids(&sentence["greedy"]);
    let args = ["generate", "--model", m, "--prompt", text, "--show-ids"];
    let out = fastlibra(&dir, &[&args[..], &["--max-tokens", "16"]].concat());
    let stdout = ok(&out);
    assert_eq!(shown_ids(&out), greedy[..16], "greedy tokens: {stdout}");
    let sampled = |seed: &str| {
        let extra = ["--max-tokens", "12", "--temperature", "0.9", "--seed", seed];
        let out = fastlibra(&dir, &[&args[..], &extra[..]].concat());
        (ok(&out), shown_ids(&out))
    };
    let (a, b, c) = (sampled("5"), sampled("5"), sampled("6"));
    assert_eq!(a, b, "the same seed gives the same text");
    assert_ne!(a.1, c.1, "another seed, other tokens");
}

#[test]
fn synthesised_adapter_matches_llama_cpp_with_its_gguf_lora() {
    let test = "synthesised_adapter_matches_llama_cpp_with_its_gguf_lora";
    let Some(model) = f32_model(test) else { return };
    let Some(python) = locate::venv_python() else {
        let venv = locate::venv_dir().unwrap_or_default();
        present(test, &venv.join("bin/python"));
        return;
    };
    let dir = scratch("lora");
    let out_dir = dir.join("adapters");
    let synth = [
        "adapters",
        "synth",
        "--model",
        path_str(&model),
        "--rank",
        "8",
        "--count",
        "1",
        "--targets",
        "all-linear",
        "--dtype",
        "f32",
        "--seed",
        "11",
        "--out",
        path_str(&out_dir),
    ];
    ok(&fastlibra(&dir, &synth));
    let peft = out_dir.join("adapter-000");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/refs/lora_logits.py");
    let py = Command::new(&python)
        .args([script.as_os_str(), peft.as_os_str(), dir.as_os_str()])
        .output()
        .expect("run python");
    assert!(
        py.status.success(),
        "lora_logits.py: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let doc: Value =
        serde_json::from_str(&support::read(&dir.join("lora_logits.json"))).expect("JSON");
    let vocab = doc["n_vocab"].as_u64().expect("n_vocab") as usize;
    let bytes = std::fs::read(dir.join("lora_logits.bin")).expect("logits");
    let rows: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let loaded = LoadedModel::open(&model).expect("the model loads");
    let lora = loaded.load_lora(&peft).expect("the adapter fits");
    let (mut worst, mut least_moved) = (0.0f32, f32::INFINITY);
    for (i, p) in doc["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .enumerate()
    {
        let prompt = ids(&p["ids"]);
        let theirs = &rows[i * vocab..(i + 1) * vocab];
        let with = Sequence::new(&loaded.model, Some(&lora), prompt.len())
            .and_then(|mut s| s.feed(&prompt))
            .expect("with the adapter");
        let base = Sequence::new(&loaded.model, None, prompt.len())
            .and_then(|mut s| s.feed(&prompt))
            .expect("without");
        worst = worst.max(max_abs(&with, theirs));
        least_moved = least_moved.min(max_abs(&with, &base));
    }
    eprintln!(
        "{test}: |ours − llama.cpp| ≤ {worst:.2e} with the adapter; it moves the logits by ≥ \
         {least_moved:.3}"
    );
    assert!(worst < 1e-2, "logits with the adapter differ by {worst}");
    assert!(least_moved > 0.1, "the adapter barely changes the logits");
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0, |m: f32, (x, y)| m.max((x - y).abs()))
}

#[test]
fn bench_runs_the_real_model_in_the_shards_and_verifies() {
    let test = "bench_runs_the_real_model_in_the_shards_and_verifies";
    let Some(model) = f32_model(test) else { return };
    let dir = scratch("bench");
    let args = [
        "bench",
        "--backend",
        "cpu",
        "--model",
        path_str(&model),
        "--verify",
        "--json",
        "--workload",
        "dgg",
        "--tenants",
        "1",
        "--rate",
        "1",
        "--duration",
        "2",
        "--cores",
        "2",
        "--hbm",
        "64M",
        "--host",
        "32M",
        "--nvme",
        "128M",
        "--policies",
        "fastlibra,vllm",
    ];
    let report: Value = serde_json::from_str(&ok(&fastlibra(&dir, &args))).expect("JSON");
    assert_eq!(
        report["model"], "SmolLM2 135M Instruct",
        "{}",
        report["model"]
    );
    for policy in ["fastlibra", "vllm"] {
        let p = &report["policies"][policy];
        assert_eq!(p["failed"].as_u64(), Some(0), "{policy}: {p}");
        assert!(
            p["verify"]["checked"].as_u64().is_some_and(|n| n > 0),
            "{policy}: {p}"
        );
        assert_eq!(p["verify"]["mismatches"], 0, "{policy}: {p}");
    }
}

fn fails(dir: &Path, args: &[&str], words: &[&str]) {
    let out = fastlibra(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    for w in words {
        assert!(stderr.contains(w), "`{w}` not in: {stderr}");
    }
}

#[test]
fn bad_model_input_is_a_clear_error_naming_file_and_field() {
    let test = "bad_model_input_is_a_clear_error_naming_file_and_field";
    let Some(model) = f32_model(test) else { return };
    let dir = scratch("bad");
    let m = path_str(&model);
    // A truncated copy of the file: refused at the header, naming the file.
    let bytes = std::fs::read(&model).expect("read the model");
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let t = path_str(&truncated);
    fails(
        &dir,
        &["generate", "--model", t, "--prompt", "Hi"],
        &["truncated.gguf"],
    );
    fails(
        &dir,
        &["bench", "--backend", "cpu", "--model", t],
        &["--model", "truncated.gguf"],
    );
    fails(
        &dir,
        &[
            "adapters", "synth", "--model", t, "--rank", "2", "--count", "1", "--out", "x",
        ],
        &["truncated.gguf"],
    );
    // An adapter for another model's shapes.
    let other = dir.join("other");
    ok(&fastlibra(
        &dir,
        &[
            "adapters",
            "synth",
            "--model",
            "cpu-random",
            "--targets",
            "q,k,v,o",
            "--rank",
            "4",
            "--count",
            "1",
            "--quiet",
            "--out",
            path_str(&other),
        ],
    ));
    let adapter = other.join("adapter-000");
    fails(
        &dir,
        &[
            "generate",
            "--model",
            m,
            "--prompt",
            "Hi",
            "--lora",
            path_str(&adapter),
        ],
        &["adapter-000", "layers"],
    );
    // A prompt longer than the context (8,192 tokens), refused before any compute.
    let long = "word ".repeat(9000);
    fails(
        &dir,
        &[
            "generate",
            "--model",
            m,
            "--prompt",
            &long,
            "--max-tokens",
            "4",
        ],
        &[F32_FILE, "context length 8192"],
    );
}
