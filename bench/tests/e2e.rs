//! `fastlibra bench` end to end on the simulator: a short run writes every file, `report.json`
//! has every key of the schema (`docs/report.md`), and the same seed gives the same bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const POLICIES: [&str; 3] = ["fastlibra", "vllm", "slora"];

/// A short run: a few requests, finished in seconds.
const SHORT: [&str; 6] = ["--duration", "5", "--loras", "10", "--seed", "7"];

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-e2e-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

fn bench(dir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .current_dir(dir)
        .arg("bench")
        .args(SHORT)
        .args(extra)
        .output()
        .expect("run fastlibra");
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const TOP_KEYS: [&str; 10] = [
    "backend",
    "workload",
    "model",
    "gpu",
    "seed",
    "rate",
    "loras",
    "duration_s",
    "policies",
    "comparison",
];

const POLICY_KEYS: [&str; 21] = [
    "requests",
    "completed",
    "failed",
    "failures",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "queue_ms",
    "lora_cold_ms",
    "kv_cold_ms",
    "hit_rate",
    "invalid_kv_fraction",
    "hbm_util_mean",
    "bytes",
    "preemptions",
    "swap_outs",
    "swap_ins_on_demand",
    "prefetches",
    "demotions",
    "drops",
    "simulated_s",
];

fn check_schema(v: &Value) {
    for key in TOP_KEYS {
        assert!(v.get(key).is_some(), "missing top-level `{key}`");
    }
    for policy in POLICIES {
        let p = &v["policies"][policy];
        for key in POLICY_KEYS {
            assert!(p.get(key).is_some(), "{policy}: missing `{key}`");
        }
        for key in ["count", "mean", "p50", "p90", "p99", "max"] {
            assert!(p["ttft_ms"][key].is_number(), "{policy}: ttft_ms.{key}");
        }
        for key in ["lora", "kv", "combined"] {
            let rate = p["hit_rate"][key].as_f64().expect("a hit rate");
            assert!(
                (0.0..=1.0).contains(&rate),
                "{policy}: hit_rate.{key} = {rate}"
            );
        }
        for key in ["h2d", "d2h", "nvme_read", "nvme_write"] {
            assert!(p["bytes"][key].is_u64(), "{policy}: bytes.{key}");
        }
        assert!(
            p["requests"].as_u64().expect("a count") > 0,
            "{policy}: no request"
        );
        let comparison = &v["comparison"][policy];
        assert!(
            comparison.get("mean_ttft_vs_fastlibra").is_some(),
            "{policy}: comparison"
        );
    }
    assert!(v["policies"]["vllm"]["lora_fraction"].is_number());
}

#[test]
fn short_run_writes_a_complete_report() {
    let dir = scratch("complete");
    let out = bench(&dir, &["--out", "report"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("report written to report"), "{stdout}");
    for policy in POLICIES {
        let hgrm = read(&dir.join("report").join(format!("{policy}.ttft.hgrm")));
        assert!(
            hgrm.starts_with("       Value     Percentile"),
            "{policy}: {hgrm}"
        );
        assert!(
            stdout.lines().any(|l| l.starts_with(policy)),
            "{policy} not in the table"
        );
    }
    let v: Value = serde_json::from_str(&read(&dir.join("report/report.json"))).expect("JSON");
    check_schema(&v);
}

#[test]
fn same_seed_same_bytes_and_json_flag() {
    let dir = scratch("determinism");
    bench(&dir, &["--out", "a", "--quiet"]);
    let json = bench(&dir, &["--out", "b", "--json"]);
    let a = read(&dir.join("a/report.json"));
    assert_eq!(a, read(&dir.join("b/report.json")), "report.json differs");
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        a,
        "--json prints the report"
    );
    for policy in POLICIES {
        let name = format!("{policy}.ttft.hgrm");
        assert_eq!(
            read(&dir.join("a").join(&name)),
            read(&dir.join("b").join(&name))
        );
    }
}
