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
