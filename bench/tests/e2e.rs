//! `fastlibra bench` end to end on the simulator: a short run writes every file, `report.json`
//! has every key of the schema (`docs/report.md`), and the same seed gives the same bytes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::read;

const POLICIES: [&str; 3] = ["fastlibra", "vllm", "slora"];

/// A short synthetic run: a few requests, finished in seconds.
const SHORT: [&str; 8] = [
    "--workload",
    "chatbot",
    "--duration",
    "5",
    "--loras",
    "10",
    "--seed",
    "7",
];

fn scratch(name: &str) -> PathBuf {
    support::scratch("bench-e2e", name)
}

fn bench(dir: &Path, extra: &[&str]) -> Output {
    run(dir, &[&SHORT[..], extra].concat())
}

/// Runs `fastlibra bench ARGS` in `dir` and expects success.
fn run(dir: &Path, args: &[&str]) -> Output {
    let out = support::bench_in(dir, args);
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

const POLICY_KEYS: [&str; 22] = [
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
    "prefill_ms",
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
fn requests_csv_has_a_row_per_request_agreeing_with_the_report() {
    let dir = scratch("requests-csv");
    run(&dir, &[&SHORT[..], &["--out", "report"]].concat());
    assert!(
        !dir.join("report/fastlibra.requests.csv").exists(),
        "written only when asked"
    );
    run(
        &dir,
        &[&SHORT[..], &["--out", "csv", "--requests-csv"]].concat(),
    );
    let v: Value = serde_json::from_str(&read(&dir.join("csv/report.json"))).expect("JSON");
    for policy in POLICIES {
        let text = read(&dir.join("csv").join(format!("{policy}.requests.csv")));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let summary = &v["policies"][policy];
        assert_eq!(
            rows.len() as u64,
            summary["requests"].as_u64().unwrap(),
            "{policy}"
        );
        let ttfts: Vec<f64> = rows
            .iter()
            .filter(|r| !r[col("ttft_ms")].is_empty())
            .map(|r| r[col("ttft_ms")].parse().expect("a number"))
            .collect();
        assert_eq!(
            ttfts.len() as u64,
            summary["ttft_ms"]["count"].as_u64().unwrap()
        );
        let mean = ttfts.iter().sum::<f64>() / ttfts.len() as f64;
        let reported = summary["ttft_ms"]["mean"].as_f64().unwrap();
        // The file rounds each TTFT down to the microsecond.
        assert!(
            (mean - reported).abs() < 0.002,
            "{policy}: {mean} vs {reported}"
        );
        let ok = rows.iter().filter(|r| r[col("status")] == "ok").count() as u64;
        assert_eq!(ok, summary["completed"].as_u64().unwrap(), "{policy}");
    }
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

/// The plots of one point and words each must show (axis labels with units, legends).
const PLOTS: [(&str, &[&str]); 4] = [
    (
        "ttft_cdf.svg",
        &[
            "TTFT (ms, log scale)",
            "fraction of requests",
            "fastlibra",
            "vllm",
            "slora",
        ],
    ),
    (
        "ttft_over_time.svg",
        &[
            "simulated time (s)",
            "mean TTFT (ms, log scale)",
            "fastlibra",
            "slora",
        ],
    ),
    (
        "hbm_use.svg",
        &[
            "HBM cache pages (%)",
            "simulated time (s)",
            "LoRA adapters",
            "valid KV",
            "invalid KV",
            "vllm",
        ],
    ),
    (
        "ttft_breakdown.svg",
        &[
            "mean TTFT (ms)",
            "queueing",
            "LoRA cold start",
            "KV cold start",
            "prefill",
            "slora",
        ],
    ),
];

/// Every file of one point's folder, as `report.md` lists them.
fn point_files() -> Vec<String> {
    let mut files: Vec<String> = PLOTS.iter().map(|(f, _)| f.to_string()).collect();
    files.push("report.md".into());
    for policy in POLICIES {
        for metric in ["ttft", "tpot", "e2e"] {
            files.push(format!("{policy}.{metric}.hgrm"));
        }
        files.push(format!("{policy}.ttft.hlog"));
    }
    files
}

fn check_plot(path: &Path, words: &[&str]) {
    let svg = read(path);
    let elements = support::check_svg(&svg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        elements.iter().any(|e| e == "text"),
        "{}: no text",
        path.display()
    );
    assert!(
        elements
            .iter()
            .filter(|e| *e == "polyline" || *e == "rect" || *e == "polygon")
            .count()
            > 3
    );
    for word in words {
        assert!(svg.contains(word), "{}: `{word}` missing", path.display());
    }
}

/// Counts the histograms of an interval log, reading it with the `hdrhistogram` crate.
fn hlog_intervals(path: &Path) -> (usize, u64) {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let text = read(path);
    let mut intervals = 0;
    let mut last_start_s = 0.0;
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        match entry.unwrap_or_else(|e| panic!("{}: {e:?}", path.display())) {
            LogEntry::Interval(h) => {
                let start = h.start_timestamp().as_secs_f64();
                assert!(start >= last_start_s, "intervals out of order");
                last_start_s = start;
                intervals += 1;
            }
            LogEntry::StartTime(t) | LogEntry::BaseTime(t) => assert_eq!(t.as_secs(), 0),
        }
    }
    (intervals, last_start_s as u64)
}

#[test]
fn default_dgg_run_writes_every_file_and_plot() {
    let dir = scratch("dgg");
    let out = run(&dir, &["--duration", "5", "--seed", "3", "--out", "r"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("report written to r"), "{stdout}");
    let r = dir.join("r");
    for file in point_files() {
        assert!(r.join(&file).is_file(), "{file} missing");
    }
    for (file, words) in PLOTS {
        check_plot(&r.join(file), words);
    }
    let v: Value = serde_json::from_str(&read(&r.join("report.json"))).expect("JSON");
    assert_eq!(v["workload"], "dgg");
    assert!(
        v["loras"].as_u64().expect("a count") > 1,
        "adapters of the call graphs"
    );
    assert!(v.get("sweep").is_none() && v.get("peak_search").is_none());
    check_schema(&v);
    let md = read(&r.join("report.md"));
    for file in point_files().iter().filter(|f| *f != "report.md") {
        assert!(
            md.contains(&format!("]({file})")),
            "report.md does not link {file}"
        );
    }
    assert!(
        md.contains("| fastlibra |") && md.contains("simulated"),
        "{md}"
    );
    for policy in POLICIES {
        let (intervals, _) = hlog_intervals(&r.join(format!("{policy}.ttft.hlog")));
        assert!(intervals >= 5, "{policy}: {intervals} intervals");
    }
}

#[test]
fn same_seed_same_files() {
    let dir = scratch("determinism-all");
    run(&dir, &["--duration", "5", "--out", "a", "--quiet"]);
    run(&dir, &["--duration", "5", "--out", "b", "--quiet"]);
    let mut files = point_files();
    files.push("report.json".into());
    for file in files {
        assert_eq!(
            read(&dir.join("a").join(&file)),
            read(&dir.join("b").join(&file)),
            "{file} differs"
        );
    }
}

#[test]
fn sweep_covers_the_grid() {
    let dir = scratch("sweep");
    let out = run(
        &dir,
        &[
            "--workload",
            "chatbot",
            "--duration",
            "5",
            "--rate",
            "1,0.5",
            "--loras",
            "20,5",
            "--out",
            "s",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0.5 sessions/s, 5 LoRAs:"), "{stdout}");
    let s = dir.join("s");
    let v: Value = serde_json::from_str(&read(&s.join("report.json"))).expect("JSON");
    let grid: Vec<(f64, u64)> = v["sweep"]
        .as_array()
        .expect("a sweep")
        .iter()
        .map(|p| {
            (
                p["rate"].as_f64().expect("rate"),
                p["loras"].as_u64().expect("loras"),
            )
        })
        .collect();
    assert_eq!(grid, vec![(0.5, 5), (1.0, 5), (0.5, 20), (1.0, 20)]);
    assert_eq!(
        (v["rate"].as_f64(), v["loras"].as_u64()),
        (Some(0.5), Some(5))
    );
    for point in v["sweep"].as_array().expect("a sweep") {
        for policy in POLICIES {
            assert!(point["policies"][policy]["ttft_ms"]["mean"].is_number());
        }
    }
    check_plot(
        &s.join("ttft_vs_rate.svg"),
        &[
            "arrival rate (sessions/s)",
            "TTFT (ms, log scale)",
            "mean TTFT, 5 LoRAs",
            "P99 TTFT, 20 LoRAs",
            "vllm",
        ],
    );
    let md = read(&s.join("report.md"));
    for folder in [
        "rate-0.5_loras-5",
        "rate-1_loras-5",
        "rate-0.5_loras-20",
        "rate-1_loras-20",
    ] {
        assert!(
            md.contains(&format!("({folder}/report.md)")),
            "{folder} not linked"
        );
        for file in point_files() {
            assert!(
                s.join(folder).join(&file).is_file(),
                "{folder}/{file} missing"
            );
        }
    }
}

#[test]
fn find_peak_reports_a_bracketed_peak() {
    let dir = scratch("peak");
    let out = run(
        &dir,
        &[
            "--workload",
            "chatbot",
            "--loras",
            "10",
            "--duration",
            "5",
            "--policies",
            "fastlibra,slora",
            "--find-peak",
            "--threshold-ms",
            "60",
            "--rate",
            "1",
            "--out",
            "p",
            "--json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON only");
    let search = &v["peak_search"];
    assert_eq!(search["threshold_ms"], 60.0);
    assert_eq!(search["rel_tolerance"], 0.05);
    assert_eq!(search["max_failed_fraction"], 0.01);
    for run in search["runs"].as_array().expect("runs") {
        let policy = run["policy"].as_str().expect("a policy");
        let peak = run["peak_rps"].as_f64().expect("a peak");
        assert_eq!(v["policies"][policy]["peak_rps"].as_f64(), Some(peak));
        let probes = run["probes"].as_array().expect("probes");
        let below = |p: &Value| p["below"].as_bool().expect("below");
        let best_below = probes
            .iter()
            .filter(|p| below(p))
            .map(|p| p["rate"].as_f64().expect("rate"))
            .fold(0.0, f64::max);
        assert_eq!(
            best_below, peak,
            "{policy}: the peak is the highest rate below"
        );
        if run["bracketed"] == true {
            let lowest_above = probes
                .iter()
                .filter(|p| !below(p))
                .map(|p| p["rate"].as_f64().expect("rate"))
                .fold(f64::INFINITY, f64::min);
            assert!(
                lowest_above > peak && (lowest_above - peak) / peak <= 0.05 + 1e-9,
                "{policy}: {lowest_above} vs {peak}"
            );
        }
        for p in probes.iter().filter(|p| below(p)) {
            assert!(p["mean_ttft_ms"].as_f64().expect("a mean") < 60.0);
        }
    }
}

#[test]
fn overview_sweeps_past_the_weakest_baseline_and_finds_every_peak() {
    let dir = scratch("overview");
    let out = run(
        &dir,
        &[
            "--overview",
            "--workload",
            "chatbot",
            "--loras",
            "10",
            "--duration",
            "5",
            "--policies",
            "fastlibra,vllm,vllm-async",
            "--threshold-ms",
            "60",
            "--out",
            "o",
            "--json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON only");
    let sweep = v["sweep"].as_array().expect("a sweep");
    assert!(!sweep.is_empty() && sweep.len() <= 8);
    let mean = |p: &Value, policy: &str| p["policies"][policy]["ttft_ms"]["mean"].as_f64();
    let last = sweep.last().expect("a point");
    // It stops at the first rate where a baseline is above the threshold, not before.
    let above = |p: &Value| {
        ["vllm", "vllm-async"]
            .iter()
            .any(|b| mean(p, b).is_none_or(|m| m >= 60.0) || p["policies"][*b]["failed"] != 0)
    };
    assert!(above(last) || sweep.len() == 8, "{last}");
    assert!(sweep[..sweep.len() - 1].iter().all(|p| !above(p)));
    let runs = v["peak_search"]["runs"].as_array().expect("peaks");
    assert_eq!(runs.len(), 3);
    for run in runs {
        // The search starts from the sweep's points.
        let probes = run["probes"].as_array().expect("probes");
        assert!(probes.len() >= sweep.len());
        for (probe, point) in probes.iter().zip(sweep) {
            assert_eq!(probe["rate"], point["rate"]);
        }
    }
    assert!(dir.join("o").join("ttft_vs_rate.svg").is_file());
}
