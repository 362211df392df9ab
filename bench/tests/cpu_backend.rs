//! `fastlibra bench --backend cpu`: a short wall-clock run of every main policy on two shards
//! with `--verify`, and the backend's bad input.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::bench_in;

fn scratch(name: &str) -> std::path::PathBuf {
    support::scratch("bench-cpu", name)
}

#[test]
fn a_short_run_verifies_every_policy_on_two_shards() {
    let dir = scratch("run");
    let spill = dir.join("spill");
    let spill_arg = spill.to_str().expect("utf-8 path");
    let mut args = support::small_real_run("cpu");
    args.extend([
        "--nvme",
        "64M",
        "--spill-dir",
        spill_arg,
        "--verify",
        "--json",
    ]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["backend"], "cpu");
    for policy in ["fastlibra", "vllm", "slora"] {
        let p = &report["policies"][policy];
        // Nothing fails, slora included: on this small HBM it used to preempt in a loop, two
        // requests that did not fit beside a long one each admitted on a first chunk and
        // preempting itself for the next, and leave requests unfinished after the drain
        // (`engine/batch.rs`, "Who gives way when pages run out").
        assert_eq!(p["failed"].as_u64(), Some(0), "{policy}: {p}");
        assert!(
            p["requests"].as_u64().is_some_and(|n| n > 0),
            "{policy}: {p}"
        );
        if policy != "slora" {
            // slora keeps no history: no request reuses KV, nothing to check.
            assert!(
                p["verify"]["checked"].as_u64().is_some_and(|n| n > 0),
                "{policy}: {p}"
            );
        }
        assert_eq!(p["verify"]["mismatches"], 0, "{policy}: {p}");
        assert_eq!(p["runtime"]["shards"], 2, "{policy}: {p}");
    }
    // The named spill folder is kept, and the page files in it were removed.
    let left: Vec<_> = std::fs::read_dir(&spill)
        .expect("spill folder kept")
        .collect();
    assert!(left.is_empty(), "page files left behind: {left:?}");
}

fn fails(name: &str, args: &[&str], words: &[&str]) {
    let dir = scratch(name);
    let out = bench_in(&dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    for w in words {
        assert!(stderr.contains(w), "`{w}` not in: {stderr}");
    }
}

#[test]
fn bad_cpu_backend_input_is_a_clear_error() {
    fails("verify-sim", &["--verify"], &["--verify", "--backend cpu"]);
    fails(
        "cores-sim",
        &["--cores", "2"],
        &["--cores", "--backend cpu"],
    );
    fails(
        "cores-zero",
        &["--backend", "cpu", "--cores", "0"],
        &["--cores"],
    );
    fails(
        "hbm-tiny",
        &["--backend", "cpu", "--hbm", "64K"],
        &["--hbm", "16 pages"],
    );
    fails(
        "hbm-junk",
        &["--backend", "cpu", "--hbm", "lots"],
        &["--hbm"],
    );
    fails(
        "reload",
        &["--backend", "cpu", "--reload-every", "-1"],
        &["--reload-every"],
    );
    fails(
        "drain-sim",
        &["--drain", "5"],
        &["--drain", "cpu, cuda or http"],
    );
    // One check for every backend that takes the flag (http reads it before planning).
    for bad in ["0", "-1", "nan"] {
        fails("drain", &["--backend", "cpu", "--drain", bad], &["--drain"]);
        fails(
            "drain-http",
            &[
                "--backend",
                "http",
                "--url",
                "http://127.0.0.1:9",
                "--drain",
                bad,
            ],
            &["--drain"],
        );
    }
    fails(
        "peak",
        &["--backend", "cpu", "--find-peak"],
        &["--find-peak", "--backend sim"],
    );
    fails(
        "spill",
        &[
            "--backend",
            "cpu",
            "--duration",
            "1",
            "--spill-dir",
            "/proc/fastlibra-spill",
        ],
        &["spill folder", "/proc/fastlibra-spill"],
    );
}

/// `--drain` bounds the wall-clock run: with a millisecond after the last arrival, what is
/// still in flight then is counted unfinished (the same run with the default 30 s finishes
/// everything, see `a_short_run_verifies_every_policy_on_two_shards`).
#[test]
fn the_drain_bounds_a_run_and_what_is_left_is_counted_unfinished() {
    let dir = scratch("drain");
    let mut args = support::small_real_run("cpu");
    args.extend(["--policies", "fastlibra", "--drain", "0.001", "--json"]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let p = &report["policies"]["fastlibra"];
    let unfinished = p["failures"]["unfinished"]
        .as_u64()
        .expect("unfinished count");
    assert!(unfinished > 0, "{p}");
    assert!(p["failed"].as_u64().is_some_and(|f| f >= unfinished), "{p}");
}

fn fastlibra_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run fastlibra")
}

#[test]
fn peft_adapters_from_a_folder_serve_a_run_and_bad_ones_are_named() {
    let dir = scratch("peft");
    let adapters = dir.join("adapters");
    let a = adapters.to_str().expect("utf-8 path");
    let synth = fastlibra_in(
        &dir,
        &[
            "adapters",
            "synth",
            "--model",
            "cpu-random",
            "--rank",
            "4",
            "--count",
            "15",
            "--targets",
            "q,k,v,o",
            "--out",
            a,
            "--quiet",
        ],
    );
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let run = || {
        let mut args = vec!["bench"];
        args.extend(support::small_real_run("cpu"));
        args.extend([
            "--nvme",
            "32M",
            "--policies",
            "fastlibra",
            "--verify",
            "--json",
        ]);
        args.extend(["--adapters", a]);
        fastlibra_in(&dir, &args)
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["policies"]["fastlibra"]["verify"]["mismatches"], 0);

    // A damaged safetensors header in one adapter: a clear error naming it.
    let victim = adapters
        .join("adapter-003")
        .join("adapter_model.safetensors");
    std::fs::write(&victim, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").expect("damage");
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("adapter-003"), "{stderr}");

    // Fewer folders than the workload has adapters.
    std::fs::remove_dir_all(adapters.join("adapter-003")).expect("remove");
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("14 adapter folders; the workload needs 15"),
        "{stderr}"
    );
}
