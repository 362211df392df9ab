//! The CPU model on the real SmolLM2 checkpoint against llama.cpp's reference files
//! (docs/peers.md, written by `scripts/refs/all.sh`):
//!
//! - F32 file: the last position's logits of 8 prompts within 1e-2 (max absolute) of
//!   llama.cpp's, and the 32 greedy tokens after each identical;
//! - Q4_1 file: perplexity over 2,044 scored tokens of `perplexity.txt` within 1 % of
//!   llama.cpp's, with the same chunks and scoring;
//! - F32 file with the rank-8 PEFT adapter `lora/peft-r8` on all seven projections: the same
//!   logits and greedy checks against llama.cpp with that adapter as a GGUF LoRA
//!   (`logits_f32_lora.json`), and logits clearly different from the base model's.
//!
//! Missing model or reference file: a failure under `FASTLIBRA_REQUIRE_MODEL=1`, a skip line
//! otherwise. The kernels crate is optimised in test builds (root `Cargo.toml`), so these run
//! in seconds.

mod refs_support;

use fastlibra_kernels::checkpoint::Checkpoint;
use fastlibra_kernels::cpu::{CpuLora, CpuModel};
use fastlibra_kernels::generate::Sequence;
use fastlibra_kernels::peft::load_peft;
use refs_support::{
    F32_FILE, Q4_1_FILE, argmax, f32_rows, file_or_skip, ids, max_abs_diff, model_file, reference,
    refs_dir,
};

/// The bound on last-position logits (max absolute difference).
const LOGITS_TOLERANCE: f32 = 1e-2;
/// The bound on perplexity (relative).
const PERPLEXITY_TOLERANCE: f64 = 0.01;

fn load(path: &std::path::Path) -> CpuModel {
    let checkpoint = Checkpoint::open(path).expect("the model file opens");
    CpuModel::from_checkpoint(&checkpoint).expect("a Llama model")
}

#[test]
fn f32_logits_and_greedy_tokens_match_llama_cpp() {
    let test = "f32_logits_and_greedy_tokens_match_llama_cpp";
    let Some(path) = model_file(test, F32_FILE) else {
        return;
    };
    let Some(doc) = reference(test, "logits_f32.json") else {
        return;
    };
    let model = load(&path);
    compare_with_reference(test, &model, None, &doc);
}

#[test]
fn f32_lora_logits_match_llama_cpp_and_differ_from_the_base() {
    let test = "f32_lora_logits_match_llama_cpp_and_differ_from_the_base";
    let Some(path) = model_file(test, F32_FILE) else {
        return;
    };
    let (Some(doc), Some(base)) = (
        reference(test, "logits_f32_lora.json"),
        reference(test, "logits_f32.json"),
    ) else {
        return;
    };
    let peft = refs_dir().join("lora").join(
        doc["lora"]["peft_dir"]
            .as_str()
            .expect("the PEFT folder's name"),
    );
    if file_or_skip(test, &peft.join("adapter_config.json")).is_none() {
        return;
    }
    let model = load(&path);
    let adapter = load_peft(&peft, &model.config().model_spec()).expect("the PEFT adapter loads");
    assert_eq!(adapter.targets().iter().count(), 7, "all seven projections");
    let lora = CpuLora::from_adapter(model.config(), &adapter).expect("it fits the model");
    compare_with_reference(test, &model, Some(&lora), &doc);
    // The adapter changes the logits far beyond the tolerance (llama.cpp's base rows).
    let (with, without) = (f32_rows(&doc["logits"]), f32_rows(&base["logits"]));
    let least = with
        .iter()
        .zip(&without)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(f32::INFINITY, f32::min);
    eprintln!("{test}: the adapter moves every prompt's logits by at least {least:.3}");
    assert!(
        least > 10.0 * LOGITS_TOLERANCE,
        "the adapter barely changes the logits ({least})"
    );
}

/// Each prompt's last-position logits within [`LOGITS_TOLERANCE`] of the reference's row and
/// its greedy tokens identical.
fn compare_with_reference(
    test: &str,
    model: &CpuModel,
    lora: Option<&CpuLora>,
    doc: &serde_json::Value,
) {
    let rows = f32_rows(&doc["logits"]);
    let prompts = doc["prompts"].as_array().expect("prompts");
    assert_eq!(prompts.len(), 8, "8 prompts");
    assert_eq!(rows.len(), prompts.len());
    let mut worst = (0.0f32, String::new());
    let mut failures = Vec::new();
    for (p, row) in prompts.iter().zip(&rows) {
        let name = p["name"].as_str().expect("name");
        let (prompt, want) = (ids(&p["ids"]), ids(&p["greedy"]));
        let mut seq = Sequence::new(model, lora, prompt.len() + want.len()).expect("arena");
        let mut logits = seq.feed(&prompt).expect("prefill");
        let diff = max_abs_diff(&logits, row);
        if diff > worst.0 {
            worst = (diff, name.to_string());
        }
        if diff > LOGITS_TOLERANCE {
            failures.push(format!("{name}: logits differ by {diff}"));
        }
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let next = argmax(&logits);
            got.push(next);
            logits = seq.feed(&[next]).expect("decode");
        }
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{name}: greedy token {at} is {} (llama.cpp {}, its margin there {})",
                got[at], want[at], p["greedy_margin"][at]
            ));
        }
    }
    eprintln!(
        "{test}: largest |logit difference| {:.2e} ({}), 8 × {} greedy tokens compared",
        worst.0,
        worst.1,
        prompts[0]["greedy"].as_array().map_or(0, Vec::len)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn q4_1_perplexity_matches_llama_cpp() {
    let test = "q4_1_perplexity_matches_llama_cpp";
    let Some(path) = model_file(test, Q4_1_FILE) else {
        return;
    };
    let Some(doc) = reference(test, "perplexity_q4_1.json") else {
        return;
    };
    let model = load(&path);
    let tokens = ids(&doc["tokens"]);
    let n_chunks = doc["n_chunks"].as_u64().expect("n_chunks") as usize;
    let chunk = doc["method"]["n_ctx"].as_u64().unwrap_or(512) as usize;
    assert!(tokens.len() >= 2000, "a text of at least 2,000 tokens");
    assert_eq!(n_chunks, tokens.len() / chunk);
    let vocab = model.config().vocab;
    let (mut nll_sum, mut scored) = (0.0f64, 0usize);
    for c in 0..n_chunks {
        let ids = &tokens[c * chunk..(c + 1) * chunk];
        let mut seq = Sequence::new(&model, None, chunk).expect("arena");
        let logits = seq.feed_all(ids).expect("forward");
        for j in 0..chunk - 1 {
            let row = &logits[j * vocab..(j + 1) * vocab];
            nll_sum += nll(row, ids[j + 1] as usize);
            scored += 1;
        }
    }
    assert_eq!(scored as u64, doc["n_scored"].as_u64().expect("n_scored"));
    let ours = (nll_sum / scored as f64).exp();
    let theirs = doc["perplexity"].as_f64().expect("perplexity");
    let rel = (ours - theirs).abs() / theirs;
    eprintln!(
        "{test}: perplexity {ours:.4} (llama.cpp {theirs:.4}, {:.3} % apart) over {scored} tokens",
        rel * 100.0
    );
    assert!(
        rel < PERPLEXITY_TOLERANCE,
        "perplexity {ours} vs llama.cpp's {theirs}: {:.3} % apart",
        rel * 100.0
    );
}

/// `logsumexp(row) − row[target]`, in f64 as the reference computes it.
fn nll(row: &[f32], target: usize) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    max + sum.ln() - f64::from(row[target])
}
