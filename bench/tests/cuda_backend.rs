//! `fastlibra bench --backend cuda`: on a GPU, a short run of every main policy with
//! `--verify`; without one, a clear error naming the way out, and `--fallback-cpu` running
//! on the emulated device with the report saying so.

mod support;

use fastlibra_kernels::cuda::CudaDevice;
use support::bench_in;

fn scratch(name: &str) -> std::path::PathBuf {
    support::scratch("bench-cuda", name)
}

/// A short run of the built-in DGG services on two shards with small tiers.
fn small() -> Vec<&'static str> {
    let mut args = support::small_real_run("cuda");
    args.extend(["--nvme", "64M"]);
    args
}

/// Runs `small()` + `extra` with `--verify --json --out out` in a fresh folder; returns the JSON
/// report and `report.md`.
fn json_run(name: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let dir = scratch(name);
    let mut args = small();
    args.extend(extra);
    args.extend(["--verify", "--json", "--out", "out"]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report = serde_json::from_slice(&out.stdout).expect("JSON report");
    (report, support::read(&dir.join("out/report.md")))
}

#[test]
fn on_a_gpu_every_policy_verifies() {
    if let Err(e) = CudaDevice::open(0) {
        eprintln!("skipping: {e}");
        return;
    }
    let (report, _) = json_run("gpu", &[]);
    assert_eq!(report["backend"], "cuda");
    for policy in ["fastlibra", "vllm", "slora"] {
        let p = &report["policies"][policy];
        assert_eq!(p["verify"]["mismatches"], 0, "{policy}: {p}");
        assert_ne!(p["runtime"]["device"], "emulated (CPU)", "{policy}: {p}");
        assert!(p["runtime"]["fallback"].is_null(), "{policy}: {p}");
    }
}

#[test]
fn without_a_gpu_the_error_names_the_fallback_and_the_fallback_is_reported() {
    let Err(e) = CudaDevice::open(0) else {
        eprintln!("skipping: this machine has a GPU");
        return;
    };
    let why = e.to_string();
    let dir = scratch("no-gpu");
    let out = bench_in(&dir, &small());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in [why.as_str(), "--fallback-cpu", "--backend cuda"] {
        assert!(stderr.contains(w), "`{w}` not in: {stderr}");
    }
    assert!(
        !dir.join("bench-out").exists(),
        "wrote output before failing"
    );

    let (report, md) = json_run("fallback", &["--fallback-cpu", "--policies", "fastlibra"]);
    let p = &report["policies"]["fastlibra"];
    assert_eq!(p["runtime"]["device"], "emulated (CPU)", "{p}");
    assert_eq!(p["runtime"]["fallback"], why.as_str(), "{p}");
    assert_eq!(p["verify"]["mismatches"], 0, "{p}");
    assert!(p["requests"].as_u64().is_some_and(|n| n > 0), "{p}");
    assert!(md.contains("## Real runtime"), "{md}");
    assert!(md.contains(&format!("(fallback: {why})")), "{md}");
}

#[test]
fn cuda_flags_elsewhere_are_refused() {
    for (backend, flag) in [
        ("sim", ["--fallback-cpu"].as_slice()),
        ("cpu", ["--fallback-cpu"].as_slice()),
        ("cpu", ["--weights", "bf16"].as_slice()),
    ] {
        let mut args = vec!["--backend", backend];
        args.extend(flag);
        let flag = flag[0];
        let out = bench_in(&scratch(backend), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(flag) && stderr.contains("--backend cuda"),
            "{stderr}"
        );
    }
    let out = bench_in(&scratch("device"), &["--backend", "cpu", "--device", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--device") && stderr.contains("--backend cuda"),
        "{stderr}"
    );
}

/// The F32 SmolLM2 file where `scripts/fetch-model.sh` puts it, or a skip line.
fn smollm2(test: &str) -> Option<std::path::PathBuf> {
    use fastlibra_kernels::checkpoint::locate;
    let path = locate::model_dir()
        .unwrap_or_default()
        .join("SmolLM2-135M-Instruct.F32.gguf");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !locate::model_required(),
        "{test}: {} is missing and FASTLIBRA_REQUIRE_MODEL=1 (run scripts/fetch-model.sh)",
        path.display()
    );
    eprintln!(
        "skip {test}: {} is missing (run scripts/fetch-model.sh)",
        path.display()
    );
    None
}

fn fastlibra_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run fastlibra")
}

#[test]
fn cuda_check_of_a_model_checks_the_file_first_then_skips_without_a_gpu() {
    let dir = scratch("check-model");
    // A file that is not there is an error naming it (status 1), GPU or not.
    let out = fastlibra_in(
        &dir,
        &[
            "cuda",
            "check",
            "--json",
            "r.json",
            "--model",
            "nowhere.gguf",
            "--model-only",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--model nowhere.gguf"), "{stderr}");
    // --model-only means nothing without --model.
    let out = fastlibra_in(&dir, &["cuda", "check", "--json", "r.json", "--model-only"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--model"), "{stderr}");

    if CudaDevice::open(0).is_ok() {
        eprintln!("skipping the no-GPU half: this machine has a GPU");
        return;
    }
    let Some(model) = smollm2("cuda_check_model") else {
        return;
    };
    let model = model.to_string_lossy().into_owned();
    for extra in [&["--model-only"][..], &[]] {
        let mut args = vec!["cuda", "check", "--json", "r.json", "--model", &model];
        args.extend(extra);
        let out = fastlibra_in(&dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("skipped: no CUDA driver found"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.join("r.json").exists());
    }
}

#[test]
fn bench_on_cuda_takes_a_checkpoint_and_without_a_gpu_names_the_fallback() {
    let Err(e) = CudaDevice::open(0) else {
        eprintln!("skipping: this machine has a GPU");
        return;
    };
    let Some(model) = smollm2("bench_cuda_model") else {
        return;
    };
    let dir = scratch("model-no-gpu");
    // Pages of SmolLM2's 16-token KV block are 720 KiB: each tier needs 16 of them.
    let mut args: Vec<&str> = small()
        .chunks(2)
        .filter(|kv| !matches!(kv[0], "--hbm" | "--host" | "--nvme"))
        .flatten()
        .copied()
        .collect();
    args.extend(["--hbm", "32M", "--host", "32M", "--nvme", "32M"]);
    args.extend(["--model", model.to_str().expect("a UTF-8 path")]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in [e.to_string().as_str(), "--fallback-cpu", "--backend cuda"] {
        assert!(stderr.contains(w), "`{w}` not in: {stderr}");
    }
    assert!(
        !stderr.contains("a checkpoint runs on --backend cpu"),
        "{stderr}"
    );
    assert!(
        !dir.join("bench-out").exists(),
        "wrote output before failing"
    );
}

/// A Hugging Face folder of a tiny Llama whose heads are 16 wide: a shape the CPU backend runs
/// and the CUDA attention kernel is not built for.
fn narrow_heads_checkpoint(dir: &std::path::Path) -> std::path::PathBuf {
    use fastlibra_kernels::checkpoint::hf::write_hf;
    use fastlibra_kernels::checkpoint::{LlamaConfig, Tensor, names};
    use fastlibra_kernels::peft::WeightDtype;
    let config = LlamaConfig {
        layers: 1,
        hidden: 32,
        heads: 2,
        kv_heads: 1,
        head_dim: 16,
        ffn: 64,
        vocab: 40,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        context_len: 64,
        tied_embeddings: true,
        name: "narrow-heads".to_string(),
    };
    let tensors: Vec<(String, Tensor)> = names::expected_tensors(&config)
        .into_iter()
        .map(|e| {
            let data: Vec<f32> = (0..e.rows * e.cols)
                .map(|i| (i % 7) as f32 * 0.01)
                .collect();
            let t = Tensor {
                rows: e.rows,
                cols: e.cols,
                data: data.into(),
            };
            (e.name, t)
        })
        .collect();
    let folder = dir.join("narrow-heads");
    write_hf(&folder, &config, &tensors, WeightDtype::F32, 1).expect("write the checkpoint");
    folder
}

#[test]
fn a_checkpoint_the_kernels_cannot_run_is_refused_by_name_on_any_machine() {
    let dir = scratch("narrow-heads");
    let model = narrow_heads_checkpoint(&dir);
    let model = model.to_str().expect("a UTF-8 path");
    let out = fastlibra_in(
        &dir,
        &[
            "cuda",
            "check",
            "--json",
            "r.json",
            "--model",
            model,
            "--model-only",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("head_dim 16"), "{stderr}");

    let mut args = small();
    args.extend(["--model", model]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in ["head_dim 16", "multiple of 32", "--backend cpu"] {
        assert!(stderr.contains(w), "`{w}` not in: {stderr}");
    }
    assert!(
        !dir.join("bench-out").exists(),
        "wrote output before failing"
    );
}

/// `scripts/make-gpu-check-model.py` (the file a GPU machine without the model is given, see
/// docs/cuda.md): cut to two layers, the real Q4_1 file still loads and generates on the CPU
/// path, and `cuda check --model` accepts it (without a GPU it gets as far as the skip).
#[test]
fn the_gpu_check_model_is_a_cut_of_the_real_file_both_paths_accept() {
    use fastlibra_kernels::checkpoint::locate;
    let test = "the_gpu_check_model_is_a_cut_of_the_real_file_both_paths_accept";
    let source = locate::model_dir()
        .unwrap_or_default()
        .join(locate::SMOLLM2_FILE);
    let python = locate::venv_python();
    if !source.is_file() || python.is_none() {
        assert!(
            !locate::model_required(),
            "{test}: {} or the venv is missing and FASTLIBRA_REQUIRE_MODEL=1 (run \
             scripts/fetch-model.sh and scripts/py-env.sh)",
            source.display()
        );
        eprintln!("skip {test}: the Q4_1 model or the venv is missing");
        return;
    }
    let python = python.expect("checked above");
    let dir = scratch("cut-model");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-gpu-check-model.py");
    let make = |out: &std::path::Path, layers: &str| {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(&source)
            .arg(out)
            .arg(layers)
            .output()
            .expect("run python")
    };
    let cut = dir.join("cut.gguf");
    let run = make(&cut, "2");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("2 of 30 layers"), "{stdout}");
    // Fewer layers than the file has is the only change: asking for more is refused.
    let refused = make(&dir.join("too-many.gguf"), "31");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("31 layers of 30"));
    assert!(!dir.join("too-many.gguf").exists());

    let cut = cut.to_string_lossy().into_owned();
    let generate = [
        "generate",
        "--model",
        &cut,
        "--prompt",
        "Hello",
        "--max-tokens",
        "4",
    ];
    let out = fastlibra_in(&dir, &generate);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = [
        "cuda",
        "check",
        "--json",
        "r.json",
        "--model",
        &cut,
        "--model-only",
    ];
    let out = fastlibra_in(&dir, &check);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if CudaDevice::open(0).is_ok() {
        assert!(out.status.success(), "{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("skipped: no CUDA driver found"), "{stderr}");
}
