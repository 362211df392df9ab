//! Overload figures in the simulator: each policy's peak rate (mean TTFT under 500 ms), then a
//! run at half the peak with a 10-second burst at 2× and at 5× the peak, with and without
//! admission control. Prints requests, rejections, the most the engine held, the process's
//! peak RSS, TTFT before, during and after the burst, and how long TTFT took to recover.
//!
//! ```sh
//! cargo run --release -p fastlibra-bench --example overload [-- --policies fastlibra,vllm]
//! ```

use std::time::Instant;

use fastlibra_bench::peak::{Measurement, PeakConfig, find_peak};
use fastlibra_bench::rss::peak_rss_mib;
use fastlibra_bench::workload::translation_at;
use fastlibra_kernels::HardwareConfig;
use fastlibra_runtime::sim::overload::{recovery_ns, window_ttft, with_burst};
use fastlibra_runtime::sim::{SimOptions, StressPlan, run_policy, run_stressed};
use fastlibra_runtime::workload::Workload;

const S: u64 = 1_000_000_000;
/// Normal load before and after the burst, s.
const BEFORE_S: u64 = 30;
const BURST_S: u64 = 10;
const AFTER_S: u64 = 50;
/// Admission control: most requests waiting.
const MAX_WAITING: u32 = 256;
const LORAS: u32 = 100;

fn translation(rate_per_s: f64, duration_s: f64, seed: u64) -> Result<Workload, String> {
    translation_at(LORAS, rate_per_s, duration_s, seed).map_err(|e| e.to_string())
}

fn peak_rate(policy: &str, options: &SimOptions) -> Result<f64, String> {
    let outcome = find_peak(&PeakConfig::default(), 1.0, |rate| {
        let workload = translation(rate, (BEFORE_S + BURST_S + AFTER_S) as f64, 1)?;
        let result = run_policy(&workload, policy, options).map_err(|e| e.to_string())?;
        Ok::<_, String>(Some(Measurement {
            mean_ttft_ms: result.mean_ttft_ns() / 1e6,
            failed_fraction: result.failed() as f64 / result.outcomes.len().max(1) as f64,
        }))
    })?;
    outcome
        .peak_rps
        .ok_or_else(|| format!("{policy}: no rate under the threshold"))
}

fn main() -> Result<(), String> {
    let policies: Vec<String> = std::env::args()
        .skip_while(|a| a != "--policies")
        .nth(1)
        .unwrap_or_else(|| "fastlibra,vllm,slora".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let options = SimOptions {
        hardware: HardwareConfig::from_presets("llama3-8b", "h100-80g")
            .map_err(|e| e.to_string())?,
        seed: 1,
        check_invariants: false,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    };
    println!(
        "translation (one-turn requests), {LORAS} LoRAs, Llama-3-8B on H100; normal = 0.5 × peak for {BEFORE_S} s, \
         burst {BURST_S} s, normal {AFTER_S} s"
    );
    println!(
        "| policy | peak rps | burst | admission | requests | rejected | unfinished | \
         waiting max | held max | nodes max | TTFT before ms | TTFT burst ms | recovery s | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for policy in &policies {
        let peak = peak_rate(policy, &options)?;
        for factor in [2.0, 5.0] {
            let normal = translation(0.5 * peak, (BEFORE_S + BURST_S + AFTER_S) as f64, 2)?;
            let burst = translation((factor - 0.5) * peak, BURST_S as f64, 3)?;
            let workload = with_burst(&normal, &burst, BEFORE_S * S);
            for max_waiting in [Some(MAX_WAITING), None] {
                let plan = StressPlan {
                    max_waiting,
                    ..StressPlan::default()
                };
                let started = Instant::now();
                let (result, report) =
                    run_stressed(&workload, policy, &options, &plan).map_err(|e| e.to_string())?;
                let wall = started.elapsed().as_secs_f64();
                if !report.violations.is_empty() {
                    return Err(format!(
                        "{policy}: checkers failed: {:?}",
                        report.violations
                    ));
                }
                let o = &result.outcomes;
                let count = |reason: &str| {
                    o.iter()
                        .filter(|o| {
                            o.failure
                                .as_ref()
                                .is_some_and(|f| format!("{f:?}") == reason)
                        })
                        .count()
                };
                let (before, _, _) = window_ttft(o, 0, BEFORE_S * S);
                let (during, _, _) = window_ttft(o, BEFORE_S * S, (BEFORE_S + BURST_S) * S);
                let end = (BEFORE_S + BURST_S + AFTER_S) * S;
                let recovery = recovery_ns(o, BEFORE_S * S, (BEFORE_S + BURST_S) * S, end, S)
                    .map_or("not recovered".to_string(), |ns| {
                        format!("{:.0}", ns as f64 / 1e9)
                    });
                println!(
                    "| {policy} | {peak:.2} | {factor}× | {} | {} | {} | {} | {} | {} | {} | {:.0} | \
                     {:.0} | {recovery} | {wall:.1} |",
                    max_waiting.map_or("none".to_string(), |m| format!("≤ {m} waiting")),
                    o.len(),
                    count("Rejected"),
                    count("Unfinished"),
                    report.peaks.waiting_requests,
                    report.peaks.active_requests,
                    report.peaks.tree_nodes,
                    before / 1e6,
                    during / 1e6,
                );
            }
        }
    }
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS of this process (all runs): {rss:.0} MiB");
    }
    Ok(())
}
