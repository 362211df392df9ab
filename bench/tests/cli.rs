//! `fastlibra bench` on bad input: every case exits non-zero with a message that names the
//! problem and the valid choices, never panics, and writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty folder for one test (under Cargo's per-target temporary folder).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

fn bench_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .current_dir(dir)
        .arg("bench")
        .args(args)
        .output()
        .expect("run fastlibra")
}

/// Runs `fastlibra bench ARGS` in a scratch folder, expects failure, and returns stderr.
fn fails(name: &str, args: &[&str]) -> String {
    let dir = scratch(name);
    let out = bench_in(&dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        !dir.join("bench-out").exists(),
        "{args:?} wrote output before failing"
    );
    stderr
}

fn assert_mentions(stderr: &str, words: &[&str]) {
    for word in words {
        assert!(stderr.contains(word), "`{word}` not in: {stderr}");
    }
}

#[test]
fn unknown_backend() {
    let e = fails("backend", &["--backend", "tpu"]);
    assert_mentions(
        &e,
        &["unknown backend `tpu`", "valid backends: sim, cpu, cuda"],
    );
}

#[test]
fn unknown_workload() {
    let e = fails("workload", &["--workload", "chess"]);
    assert_mentions(
        &e,
        &[
            "unknown workload `chess`",
            "dgg",
            "chatbot",
            "translation",
            "agents",
        ],
    );
}

#[test]
fn dgg_graphs_missing_or_malformed() {
    let e = fails("graphs-missing", &["--graphs", "no-such-folder"]);
    assert_mentions(&e, &["--graphs no-such-folder", "no such folder"]);

    let dir = scratch("graphs-bad");
    std::fs::create_dir_all(dir.join("empty")).expect("mkdir");
    std::fs::create_dir_all(dir.join("garbage")).expect("mkdir");
    std::fs::write(dir.join("garbage/service_info.csv"), "nonsense\n").expect("write");
    for (folder, words) in [
        ("empty", &["dgg workload", "empty"][..]),
        ("garbage", &["dgg workload", "service_info.csv"][..]),
    ] {
        let out = bench_in(&dir, &["--graphs", folder, "--duration", "5"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{folder} succeeded");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.join("bench-out").exists(), "{folder}: wrote output");
        assert_mentions(&stderr, words);
    }
}

#[test]
fn flags_that_do_not_fit_the_workload() {
    let e = fails(
        "graphs-chatbot",
        &["--workload", "chatbot", "--graphs", "."],
    );
    assert_mentions(&e, &["--graphs applies only to --workload dgg"]);
    let e = fails("loras-dgg", &["--loras", "10"]);
    assert_mentions(&e, &["--loras does not apply to --workload dgg"]);
}

#[test]
fn malformed_lists() {
    for (name, flag, value, word) in [
        ("rate-empty-item", "--rate", "1,,2", "--rate"),
        ("rate-word", "--rate", "1,fast", "--rate"),
        ("rate-comma", "--rate", ",", "--rate"),
        ("loras-word", "--loras", "10,many", "--loras"),
        ("loras-negative", "--loras", "10,-1", "--loras"),
    ] {
        let e = fails(name, &["--workload", "chatbot", flag, value]);
        assert_mentions(&e, &[word, "invalid value"]);
    }
    let e = fails("rate-twice", &["--rate", "2,1,2"]);
    assert_mentions(&e, &["--rate lists 2 twice"]);
    let e = fails("loras-twice", &["--workload", "chatbot", "--loras", "5,5"]);
    assert_mentions(&e, &["--loras lists 5 twice"]);
    let e = fails("rate-list-negative", &["--rate", "1,-1"]);
    assert_mentions(&e, &["--rate must be", "got -1"]);
    let many: Vec<String> = (1..=65).map(|r| r.to_string()).collect();
    let e = fails("grid-too-large", &["--rate", &many.join(",")]);
    assert_mentions(&e, &["65 points", "at most 64"]);
}

#[test]
fn bad_peak_settings() {
    for value in ["0", "-5", "NaN", "inf"] {
        let e = fails("threshold", &["--find-peak", "--threshold-ms", value]);
        assert_mentions(
            &e,
            &["--threshold-ms must be a positive number of milliseconds"],
        );
    }
    for value in ["0", "1", "-0.1"] {
        let e = fails("tolerance", &["--find-peak", "--peak-tolerance", value]);
        assert_mentions(&e, &["--peak-tolerance must be a fraction between 0 and 1"]);
    }
}

#[test]
fn unknown_policy() {
    let e = fails("policy", &["--policies", "fastlibra,lru"]);
    assert_mentions(&e, &["unknown policy `lru`", "slora", "vllm-oracle"]);
    let e = fails("policy-empty", &["--policies", ""]);
    assert_mentions(&e, &["unknown policy ``"]);
}

#[test]
fn duplicate_policy() {
    let e = fails("policy-twice", &["--policies", "vllm,slora,vllm"]);
    assert_mentions(&e, &["`vllm`", "twice"]);
}

#[test]
fn unknown_model_and_gpu() {
    let e = fails("model", &["--model", "gpt-5"]);
    assert_mentions(&e, &["unknown model preset `gpt-5`", "llama3-8b"]);
    let e = fails("gpu", &["--gpu", "tpu-v5"]);
    assert_mentions(&e, &["unknown GPU preset `tpu-v5`", "h100-80g"]);
}

#[test]
fn bad_config_files() {
    let dir = scratch("config-files");
    let negative = dir.join("negative.toml");
    std::fs::write(&negative, "[gpu]\nhbm_bandwidth_bytes_per_s = -1\n").expect("write");
    let missing_value = dir.join("missing.toml");
    std::fs::write(&missing_value, "[gpu]\nhbm_bytes =\n").expect("write");
    let unknown_key = dir.join("typo.toml");
    std::fs::write(&unknown_key, "[gpu]\nhbm_byts = 1\n").expect("write");

    let arg = |p: &Path| p.display().to_string();
    let e = fails("config-negative", &["--config", &arg(&negative)]);
    assert_mentions(
        &e,
        &["--config", "gpu.hbm_bandwidth_bytes_per_s", "non-negative"],
    );
    let e = fails("config-missing", &["--config", &arg(&missing_value)]);
    assert_mentions(&e, &["--config", "invalid hardware configuration"]);
    let e = fails("config-typo", &["--config", &arg(&unknown_key)]);
    assert_mentions(&e, &["hbm_byts"]);
    let e = fails("config-absent", &["--config", "no-such-file.toml"]);
    assert_mentions(&e, &["cannot read", "no-such-file.toml"]);
}

#[test]
fn bad_numbers() {
    let e = fails("rate-zero", &["--rate", "0"]);
    assert_mentions(&e, &["--rate must be a positive number", "got 0"]);
    let e = fails("rate-negative", &["--rate", "-2"]);
    assert_mentions(&e, &["--rate must be", "got -2"]);
    let e = fails("rate-nan", &["--rate", "NaN"]);
    assert_mentions(&e, &["--rate must be"]);
    let e = fails("duration-zero", &["--duration", "0"]);
    assert_mentions(&e, &["--duration must be a positive number of seconds"]);
    let e = fails("loras-zero", &["--workload", "chatbot", "--loras", "0"]);
    assert_mentions(&e, &["--loras must be at least 1"]);
    let e = fails("rate-text", &["--rate", "fast"]);
    assert_mentions(&e, &["--rate"]);
}

#[test]
fn duration_too_short_for_one_request() {
    let e = fails("too-short", &["--duration", "0.000001"]);
    assert_mentions(&e, &["no request arrives", "raise --duration or --rate"]);
    let e = fails(
        "too-short-chatbot",
        &["--workload", "chatbot", "--duration", "0.000001"],
    );
    assert_mentions(&e, &["no request arrives", "raise --duration or --rate"]);
}

#[test]
fn unwritable_output_folder() {
    let dir = scratch("unwritable");
    std::fs::write(dir.join("a-file"), "not a folder").expect("write");
    let out = bench_in(&dir, &["--out", "a-file/report", "--duration", "5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_mentions(&stderr, &["cannot use output directory", "a-file/report"]);
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .args(["bench", "--help"])
        .output()
        .expect("run fastlibra");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
        let doc = line.trim_start().split_once("  ").map(|(_, d)| d.trim());
        assert!(doc.is_some_and(|d| !d.is_empty()), "undocumented: {line}");
    }
    for flag in [
        "--backend",
        "--workload",
        "--policies",
        "--seed",
        "--duration",
        "--rate",
        "--loras",
        "--model",
        "--gpu",
        "--config",
        "--out",
        "--quiet",
        "--json",
        "--graphs",
        "--find-peak",
        "--threshold-ms",
        "--peak-tolerance",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn hardware_too_small_for_the_model() {
    // Only the simulator knows the memory plan, so this fails after the folder is prepared.
    let dir = scratch("capacity");
    std::fs::write(dir.join("tiny.toml"), "[gpu]\nhbm_bytes = 1000\n").expect("write");
    let out = bench_in(&dir, &["--config", "tiny.toml", "--duration", "5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_mentions(&stderr, &["policy `fastlibra`", "KV pages"]);
}
