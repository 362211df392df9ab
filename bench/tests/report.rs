//! The report writers on hand-made simulation results: summary math, the `.hgrm` format and
//! the determinism of `report.json`.

use fastlibra_bench::report::hgrm::percentile_distribution;
use fastlibra_bench::report::latency::LatencyRecorder;
use fastlibra_bench::report::table;
use fastlibra_bench::report::{PolicySummary, Report, RunInfo, summarize};
use fastlibra_runtime::outcome::{
    EngineStats, FailureReason, LinkBytes, MemorySample, RequestOutcome,
};
use fastlibra_runtime::sim::SimResult;

const MS: u64 = 1_000_000;

/// A request that arrives at `request` seconds, gets its first token `ttft_ms` later and its
/// last `100 ms` after that (11 output tokens, so TPOT is 10 ms).
fn completed(request: u64, ttft_ms: u64) -> RequestOutcome {
    let arrival_ns = request * 1_000 * MS;
    let ttft_ns = ttft_ms * MS;
    RequestOutcome {
        request,
        session: None,
        adapter: 0,
        arrival_ns,
        first_token_ns: Some(arrival_ns + ttft_ns),
        finish_ns: arrival_ns + ttft_ns + 100 * MS,
        prompt_tokens: 100,
        output_tokens: 11,
        queue_ns: ttft_ns / 2,
        lora_cold_ns: ttft_ns / 4,
        kv_cold_ns: ttft_ns / 4,
        prefill_ns: 0,
        lora_hit: false,
        kv_hit_blocks: 0,
        kv_reusable_blocks: 0,
        preemptions: 0,
        failure: None,
    }
}

/// Eight completed requests (TTFT 10…80 ms), one unfinished after its first token (TTFT
/// 500 ms) and one rejected before it.
fn outcomes() -> Vec<RequestOutcome> {
    let mut all: Vec<RequestOutcome> = (0..8).map(|i| completed(i, (i + 1) * 10)).collect();
    let mut unfinished = completed(8, 500);
    unfinished.failure = Some(FailureReason::Unfinished);
    unfinished.output_tokens = 3;
    all.push(unfinished);
    let mut rejected = completed(9, 0);
    rejected.first_token_ns = None;
    rejected.finish_ns = rejected.arrival_ns;
    rejected.failure = Some(FailureReason::Rejected);
    all.push(rejected);
    // LoRA hits on requests 0–4; reusable history on 0–3 with 4, 4, 2 and 0 blocks found.
    for o in &mut all[..5] {
        o.lora_hit = true;
    }
    for (o, hit) in all.iter_mut().zip([4, 4, 2, 0]) {
        o.kv_reusable_blocks = 4;
        o.kv_hit_blocks = hit;
    }
    all
}

fn sample(t_ns: u64, lora: u32, valid: u32, invalid: u32) -> MemorySample {
    MemorySample {
        t_ns,
        capacity_pages: 100,
        lora_pages: lora,
        kv_valid_pages: valid,
        kv_invalid_pages: invalid,
    }
}

fn result(policy: &str, ttft_scale: u64) -> SimResult {
    let mut outcomes = outcomes();
    for o in &mut outcomes {
        if let Some(first) = o.first_token_ns.as_mut() {
            let extra_ns = (*first - o.arrival_ns) * (ttft_scale - 1);
            *first += extra_ns;
            o.finish_ns += extra_ns;
        }
    }
    SimResult {
        policy: policy.to_string(),
        outcomes,
        stats: EngineStats {
            bytes: LinkBytes {
                h2d: 1,
                d2h: 2,
                nvme_read: 3,
                nvme_write: 4,
            },
            // Invalid share 0 for 10 s, then 0.5 for 30 s; use 0.2 then 0.3.
            timeline: vec![sample(0, 10, 10, 0), sample(10_000 * MS, 10, 10, 10)],
            prefetches: 5,
            swap_outs: 6,
            drops: 7,
            preemptions: 8,
            ..EngineStats::default()
        },
        simulated_ns: 40_000 * MS,
        lora_fraction: (policy == "vllm").then_some(0.2),
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[test]
fn counts_and_failures() {
    let s = summarize(&result("fastlibra", 1)).summary;
    assert_eq!((s.requests, s.completed, s.failed), (10, 8, 2));
    assert_eq!(s.failures.unfinished, 1);
    assert_eq!(s.failures.rejected, 1);
    assert_eq!(s.failures.too_long + s.failures.unknown_adapter, 0);
    assert_eq!((s.bytes.h2d, s.bytes.d2h), (1, 2));
    assert_eq!((s.bytes.nvme_read, s.bytes.nvme_write), (3, 4));
    assert_eq!(
        (s.prefetches, s.swap_outs, s.drops, s.preemptions),
        (5, 6, 7, 8)
    );
    assert_eq!(s.lora_fraction, None);
    assert!(close(s.simulated_s, 40.0, 1e-12));
}

#[test]
fn latency_percentiles() {
    let s = summarize(&result("fastlibra", 1)).summary;
    // TTFT: the eight completed plus the unfinished one (it had a first token).
    assert_eq!(s.ttft_ms.count, 9);
    assert!(close(s.ttft_ms.mean, 860.0 / 9.0, 1e-9), "{:?}", s.ttft_ms);
    assert!(close(s.ttft_ms.p50, 50.0, 0.05), "{:?}", s.ttft_ms);
    // The 90th percentile is the 9th of 9 samples (rank ⌈0.9 × 9⌉).
    assert!(close(s.ttft_ms.p90, 500.0, 0.5), "{:?}", s.ttft_ms);
    assert!(close(s.ttft_ms.p99, 500.0, 0.5), "{:?}", s.ttft_ms);
    assert_eq!(s.ttft_ms.max, 500.0);
    // Parts of TTFT: half, a quarter and a quarter.
    assert!(close(s.queue_ms.mean, 860.0 / 18.0, 1e-9));
    assert!(close(s.lora_cold_ms.mean, 860.0 / 36.0, 1e-9));
    assert!(close(s.kv_cold_ms.max, 125.0, 1e-12));
    // TPOT and end-to-end: completed requests only.
    assert_eq!(s.tpot_ms.count, 8);
    assert_eq!((s.tpot_ms.mean, s.tpot_ms.max), (10.0, 10.0));
    assert_eq!(s.e2e_ms.count, 8);
    assert!(close(s.e2e_ms.mean, 145.0, 1e-9));
    assert_eq!(s.e2e_ms.max, 180.0);
}

#[test]
fn hit_rates_and_timeline() {
    let s = summarize(&result("fastlibra", 1)).summary;
    assert!(close(s.hit_rate.lora, 0.5, 1e-12));
    // Σ hits 10 / Σ reusable 16.
    assert!(close(s.hit_rate.kv, 0.625, 1e-12));
    // LoRA hit and all history found: requests 0, 1 and 4 (no history).
    assert!(close(s.hit_rate.combined, 0.3, 1e-12));
    assert!(close(s.invalid_kv_fraction, 0.375, 1e-12));
    assert!(close(s.hbm_util_mean, 0.275, 1e-12));
}

#[test]
fn kv_hit_rate_is_one_without_reusable_history() {
    let mut r = result("fastlibra", 1);
    for o in &mut r.outcomes {
        o.kv_hit_blocks = 0;
        o.kv_reusable_blocks = 0;
    }
    r.stats.timeline.clear();
    let s = summarize(&r).summary;
    assert_eq!(s.hit_rate.kv, 1.0);
    assert_eq!(s.invalid_kv_fraction, 0.0);
    assert_eq!(s.hbm_util_mean, 0.0);
}

fn run_info() -> RunInfo {
    RunInfo {
        backend: "sim".into(),
        workload: "chatbot".into(),
        model: "llama3-8b".into(),
        gpu: "h100-80g".into(),
        seed: 1,
        rate: 1.0,
        loras: 100,
        duration_s: 60.0,
    }
}

fn summaries(order: &[(&str, u64)]) -> Vec<(String, PolicySummary)> {
    order
        .iter()
        .map(|(p, scale)| (p.to_string(), summarize(&result(p, *scale)).summary))
        .collect()
}

#[test]
fn json_is_deterministic_and_complete() {
    let a = Report::new(
        run_info(),
        summaries(&[("fastlibra", 1), ("vllm", 2), ("slora", 3)]),
    );
    let b = Report::new(
        run_info(),
        summaries(&[("slora", 3), ("vllm", 2), ("fastlibra", 1)]),
    );
    let text = a.to_json().expect("encodes");
    assert_eq!(text, b.to_json().expect("encodes"));
    assert!(text.ends_with("}\n"));

    let v: serde_json::Value = serde_json::from_str(&text).expect("parses");
    for key in [
        "workload",
        "model",
        "gpu",
        "seed",
        "rate",
        "loras",
        "duration_s",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let vllm = &v["policies"]["vllm"];
    assert_eq!(vllm["lora_fraction"], 0.2);
    assert!(v["policies"]["fastlibra"].get("lora_fraction").is_none());
    assert_eq!(vllm["failures"]["rejected"], 1);
    let ratio = v["comparison"]["vllm"]["mean_ttft_vs_fastlibra"]
        .as_f64()
        .expect("a ratio");
    assert!(close(ratio, 2.0, 1e-12), "{ratio}");
    assert_eq!(v["comparison"]["fastlibra"]["mean_ttft_vs_fastlibra"], 1.0);

    let back: Report = serde_json::from_str(&text).expect("round-trips");
    assert_eq!(back, a);
}

#[test]
fn no_comparison_without_fastlibra() {
    let r = Report::new(run_info(), summaries(&[("vllm", 2)]));
    assert!(r.comparison.is_empty());
    let t = table::render(&r, &["vllm"]);
    assert!(
        t.lines().nth(1).expect("a row").trim_end().ends_with('-'),
        "{t}"
    );
}

#[test]
fn table_is_aligned_in_run_order() {
    let r = Report::new(
        run_info(),
        summaries(&[("fastlibra", 1), ("vllm", 2), ("slora", 3)]),
    );
    let t = table::render(&r, &["vllm", "slora", "fastlibra"]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("policy"));
    assert!(
        lines[1].starts_with("vllm") && lines[1].ends_with("2.00x"),
        "{t}"
    );
    assert!(
        lines[3].starts_with("fastlibra") && lines[3].ends_with("1.00x"),
        "{t}"
    );
    let width = lines[0].len();
    assert!(lines.iter().all(|l| l.len() == width), "{t}");
    assert!(lines[1].contains("50.0%"), "LoRA hit rate: {t}");
}

#[test]
fn hgrm_has_the_standard_layout() {
    let mut r = LatencyRecorder::new();
    for ms in 1..=100 {
        r.record_ns(ms * MS);
    }
    let text = percentile_distribution(r.histogram(), 1000.0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert_eq!(lines[1], "");
    let rows = &lines[2..lines.len() - 3];
    let mut last_quantile = -1.0;
    for (i, row) in rows.iter().enumerate() {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let last = i + 1 == rows.len();
        assert_eq!(cols.len(), if last { 3 } else { 4 }, "{row}");
        let quantile: f64 = cols[1].parse().expect("a quantile");
        assert!(quantile >= last_quantile, "{row}");
        assert_eq!(cols[1].len(), 14, "12 decimals: {row}");
        assert_eq!(cols[0].split('.').nth(1).map(str::len), Some(3), "{row}");
        last_quantile = quantile;
    }
    assert!(rows[0].starts_with("       1.000 0.000000000000          1           1.00"));
    assert_eq!(
        rows[rows.len() - 1],
        "     100.031 1.000000000000        100"
    );
    assert!(lines[lines.len() - 3].starts_with("#[Mean    =       50.5"));
    assert!(lines[lines.len() - 2].ends_with("Total count    =          100]"));
    assert!(lines[lines.len() - 1].ends_with("SubBuckets     =         2048]"));
}

#[test]
fn hgrm_of_one_value() {
    let mut r = LatencyRecorder::new();
    r.record_ns(2 * MS);
    let text = percentile_distribution(r.histogram(), 1000.0);
    let expected_rows = "       2.000 0.000000000000          1           1.00\n\
                         \x20      2.000 1.000000000000          1\n";
    assert!(text.contains(expected_rows), "{text}");
    assert!(text.contains("#[Mean    =        2.000, StdDeviation   =        0.000]\n"));
}

#[test]
fn hgrm_of_nothing() {
    let text = percentile_distribution(LatencyRecorder::new().histogram(), 1000.0);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("Total count    =            0]"), "{text}");
}
