//! Overload in wall-clock time, on the real runtime (CPU backend, 2 shards): a quick peak
//! search (the highest of 1, 2, 4, 8, … requests/s whose mean TTFT stays under 500 ms), then
//! normal load at half the peak with a burst at 2× and at 5× the peak, with admission control
//! (at most `MAX_WAITING` requests waiting per shard). Prints requests, rejections, unfinished
//! requests, the process's peak RSS, TTFT before and during the burst, and how long TTFT took
//! to recover after it.
//!
//! ```sh
//! cargo run --release -p fastlibra-bench --example overload_cpu [-- --policy fastlibra]
//! ```

use std::time::Instant;

use fastlibra_bench::rss::peak_rss_mib;
use fastlibra_bench::workload::translation_at;
use fastlibra_runtime::outcome::RequestOutcome;
use fastlibra_runtime::real::{RunOptions, run_real};
use fastlibra_runtime::sim::overload::{recovery_ns, window_ttft, with_burst};
use fastlibra_runtime::workload::Workload;

const S: u64 = 1_000_000_000;
const BEFORE_S: u64 = 20;
const BURST_S: u64 = 10;
const AFTER_S: u64 = 30;
const MAX_WAITING: u32 = 32;
const LORAS: u32 = 20;
const THRESHOLD_MS: f64 = 500.0;

fn translation(rate_per_s: f64, duration_s: f64, seed: u64) -> Result<Workload, String> {
    translation_at(LORAS, rate_per_s, duration_s, seed).map_err(|e| e.to_string())
}

/// Outcomes with times relative to the workload's time zero.
fn relative(outcomes: &[RequestOutcome], start_ns: u64) -> Vec<RequestOutcome> {
    outcomes
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.arrival_ns = o.arrival_ns.saturating_sub(start_ns);
            o.first_token_ns = o.first_token_ns.map(|t| t.saturating_sub(start_ns));
            o.finish_ns = o.finish_ns.saturating_sub(start_ns);
            o
        })
        .collect()
}

fn main() -> Result<(), String> {
    let policy = std::env::args()
        .skip_while(|a| a != "--policy")
        .nth(1)
        .unwrap_or_else(|| "fastlibra".into());
    let options = RunOptions {
        shards: 2,
        max_waiting: MAX_WAITING,
        drain_ns: 20 * S,
        ..RunOptions::default()
    };
    println!("translation, {LORAS} LoRAs, CPU backend, 2 shards, {policy}");
    let mut peak = 0.0;
    let mut rate = 1.0;
    while rate <= 64.0 {
        let w = translation(rate, 15.0, 1)?;
        let run = run_real(&w, &policy, &options).map_err(|e| e.to_string())?;
        let mean = run.result.mean_ttft_ns() / 1e6;
        let failed = run.result.failed();
        println!("  probe {rate} req/s: mean TTFT {mean:.0} ms, {failed} failed");
        if mean >= THRESHOLD_MS || failed > 0 {
            break;
        }
        peak = rate;
        rate *= 2.0;
    }
    if peak == 0.0 {
        return Err("no probe stayed under the threshold".into());
    }
    println!("peak ≈ {peak} req/s (the highest probe under {THRESHOLD_MS} ms)");
    println!(
        "| burst | requests | rejected | unfinished | TTFT before ms | TTFT burst ms | recovery s | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for factor in [2.0, 5.0] {
        let normal = translation(0.5 * peak, (BEFORE_S + BURST_S + AFTER_S) as f64, 2)?;
        let burst = translation((factor - 0.5) * peak, BURST_S as f64, 3)?;
        let workload = with_burst(&normal, &burst, BEFORE_S * S);
        let started = Instant::now();
        let run = run_real(&workload, &policy, &options).map_err(|e| e.to_string())?;
        let wall = started.elapsed().as_secs_f64();
        let o = relative(&run.result.outcomes, run.start_ns);
        let count = |reason: &str| {
            o.iter()
                .filter(|o| {
                    o.failure
                        .as_ref()
                        .is_some_and(|f| format!("{f:?}") == reason)
                })
                .count()
        };
        let expected: usize = workload.sessions.iter().map(|s| s.turns.len()).sum();
        if o.len() > expected {
            return Err(format!("{} outcomes for {expected} turns", o.len()));
        }
        let (before, _, _) = window_ttft(&o, 0, BEFORE_S * S);
        let (during, _, _) = window_ttft(&o, BEFORE_S * S, (BEFORE_S + BURST_S) * S);
        let end = (BEFORE_S + BURST_S + AFTER_S) * S;
        let recovery = recovery_ns(&o, BEFORE_S * S, (BEFORE_S + BURST_S) * S, end, S)
            .map_or("not recovered".to_string(), |ns| {
                format!("{:.0}", ns as f64 / 1e9)
            });
        println!(
            "| {factor}× | {} | {} | {} | {:.0} | {:.0} | {recovery} | {wall:.1} |",
            o.len(),
            count("Rejected"),
            count("Unfinished"),
            before / 1e6,
            during / 1e6,
        );
    }
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS of this process (all runs): {rss:.0} MiB");
    }
    Ok(())
}
