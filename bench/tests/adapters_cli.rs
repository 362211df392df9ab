//! `fastlibra adapters`: `synth` writes adapters PEFT's loader (ours) accepts, `check` reads
//! them back, and bad input exits non-zero with a message, never a panic, writing nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fastlibra_kernels::peft::{WeightDtype, load_peft};
use fastlibra_kernels::{HardwareConfig, LoraTarget, LoraTargets, ModelSpec};

/// 2 layers, hidden 64, 4 heads, 2 KV heads, FFN 128.
const TINY_TOML: &str = "[model]\nlayers = 2\nhidden_size = 64\nattention_heads = 4\n\
                         kv_heads = 2\nintermediate_size = 128\nvocab_size = 256\n";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("adapters-cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

fn fastlibra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .arg("adapters")
        .args(args)
        .output()
        .expect("run fastlibra")
}

fn succeeds(args: &[&str]) -> String {
    let out = fastlibra(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str], words: &[&str]) {
    let out = fastlibra(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "`{word}` not in: {stderr}");
    }
}

fn tiny(dir: &Path) -> (PathBuf, ModelSpec) {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, TINY_TOML).expect("write toml");
    let spec = HardwareConfig::from_presets("llama3-8b", "h100-80g")
        .and_then(|h| h.with_toml(TINY_TOML))
        .expect("tiny config")
        .model;
    (path, spec)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn synth_writes_loadable_adapters_of_the_tiny_model() {
    let dir = scratch("tiny");
    let (config, spec) = tiny(&dir);
    let out = dir.join("out");
    let stdout = succeeds(&[
        "synth",
        "--config",
        s(&config),
        "--rank",
        "4",
        "--count",
        "3",
        "--out",
        s(&out),
        "--targets",
        "all-linear",
        "--dtype",
        "f16",
        "--seed",
        "7",
    ]);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let loaded: Vec<_> = (0..3)
        .map(|i| load_peft(&out.join(format!("adapter-{i:03}")), &spec).expect("loadable"))
        .collect();
    for a in &loaded {
        assert_eq!(
            (a.rank(), a.alpha(), a.targets()),
            (4, 8.0, LoraTargets::ALL_LINEAR)
        );
        assert_eq!(a.dtype(), WeightDtype::F16);
        let q = a.pair(1, LoraTarget::Q).expect("q");
        let bound = (3.0f32 / 64.0).sqrt();
        assert!(q.a().iter().all(|v| v.abs() <= bound * 1.001));
        assert!(q.b().iter().all(|v| v.abs() <= 0.02));
    }
    assert_ne!(loaded[0], loaded[1], "adapters share weights");

    // The same seed writes the same weights; --quiet prints nothing.
    let again = dir.join("again");
    let quiet = succeeds(&[
        "synth",
        "--config",
        s(&config),
        "--rank",
        "4",
        "--count",
        "1",
        "--out",
        s(&again),
        "--targets",
        "all-linear",
        "--dtype",
        "f16",
        "--seed",
        "7",
        "--quiet",
    ]);
    assert!(quiet.is_empty(), "{quiet}");
    let first = load_peft(&again.join("adapter-000"), &spec).expect("loadable");
    assert_eq!(first, loaded[0]);

    let report = succeeds(&[
        "check",
        s(&out.join("adapter-002")),
        "--config",
        s(&config),
        "--model",
        "llama3-8b",
        "--page-bytes",
        "1K",
    ]);
    // 2 layers × (q 128 + k 96 + v 96 + o 128 + gate 192 + up 192 + down 192) × 2 bytes = 4096
    // bytes per rank, 16 KiB in all: 16 pages of 1 KiB.
    assert!(report.contains("rank 4, alpha 8"), "{report}");
    assert!(report.contains("bytes 16384"), "{report}");
    assert!(
        report.contains("pages 16 of 1024 bytes (allocator: 16)"),
        "{report}"
    );
}

#[test]
fn synth_and_check_a_llama3_8b_adapter() {
    let dir = scratch("llama3");
    succeeds(&[
        "synth",
        "--model",
        "llama3-8b",
        "--rank",
        "1",
        "--count",
        "1",
        "--out",
        s(&dir),
    ]);
    let adapter = load_peft(&dir.join("adapter-000"), &ModelSpec::llama3_8b()).expect("loads");
    assert_eq!(adapter.bytes(), 1664 << 10);
    // The model comes from base_model_name_or_path; the page is one 2 MiB KV block.
    let report = succeeds(&["check", s(&dir.join("adapter-000"))]);
    assert!(report.contains("targets q,k,v,o, dtype bf16"), "{report}");
    assert!(report.contains("pages 1 of 2097152 bytes"), "{report}");
}

#[test]
fn bad_input_fails_without_writing() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let o = s(&out);
    fails(
        &["synth", "--rank", "0", "--count", "1", "--out", o],
        &["--rank"],
    );
    fails(
        &["synth", "--rank", "1", "--count", "0", "--out", o],
        &["--count"],
    );
    fails(
        &[
            "synth", "--model", "gpt-5", "--rank", "1", "--count", "1", "--out", o,
        ],
        &["gpt-5", "llama3-8b"],
    );
    fails(
        &[
            "synth",
            "--rank",
            "1",
            "--count",
            "1",
            "--targets",
            "mlp",
            "--out",
            o,
        ],
        &["mlp"],
    );
    fails(
        &[
            "synth", "--rank", "1", "--count", "1", "--dtype", "int8", "--out", o,
        ],
        &["int8"],
    );
    fails(
        &[
            "synth",
            "--rank",
            "64",
            "--count",
            "100",
            "--targets",
            "all-linear",
            "--out",
            o,
        ],
        &["--max-bytes"],
    );
    fails(
        &[
            "synth",
            "--rank",
            "1",
            "--count",
            "1",
            "--max-bytes",
            "1M",
            "--out",
            o,
        ],
        &["--max-bytes"],
    );
    assert!(!out.exists(), "a failed run wrote output");

    // An output path below a regular file cannot be created.
    let file = dir.join("file");
    std::fs::write(&file, "x").expect("write file");
    let below = file.join("out");
    fails(
        &["synth", "--rank", "1", "--count", "1", "--out", s(&below)],
        &["adapter-000"],
    );

    fails(
        &["check", s(&dir.join("nowhere"))],
        &["adapter_config.json"],
    );
}
