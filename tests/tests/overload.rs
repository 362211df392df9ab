//! Overload in the simulator (translation: one-turn requests): half a policy's peak rate
//! with a burst at 2× and 5× the peak on top. With admission control the requests and the
//! memory the engine holds stay bounded, every request completes or is rejected with that
//! reason, the checkers hold, and TTFT is back to normal before the end. Without it the same
//! burst makes the engine hold more than the bound (so the bound is the admission control's
//! doing). Figures: `bench/examples/overload.rs`.

use fastlibra_bench::peak::{Measurement, PeakConfig, find_peak};
use fastlibra_bench::workload::translation_at;
use fastlibra_kernels::HardwareConfig;
use fastlibra_runtime::outcome::FailureReason;
use fastlibra_runtime::sim::overload::{recovery_ns, with_burst};
use fastlibra_runtime::sim::plan::MemoryPlan;
use fastlibra_runtime::sim::{SimOptions, StressPlan, run_policy, run_stressed};
use fastlibra_runtime::workload::Workload;

const S: u64 = 1_000_000_000;
const BEFORE_S: u64 = 10;
const BURST_S: u64 = 5;
const AFTER_S: u64 = 30;
const MAX_WAITING: u32 = 32;
/// The engine's default batch limit (`EngineConfig::max_batch`).
const MAX_BATCH: usize = 256;

/// Llama-3-8B on a GPU cut down to 32 GB, a 16 GB host tier, 64 GB of NVMe.
fn options() -> SimOptions {
    let mut hardware = HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("presets");
    hardware.gpu.hbm_bytes = 32_000_000_000;
    hardware.gpu.host_memory_bytes = 16 << 30;
    hardware.gpu.nvme_bytes = 64 << 30;
    SimOptions {
        hardware,
        seed: 7,
        check_invariants: false,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    }
}

fn translation(rate_per_s: f64, duration_s: u64, seed: u64) -> Workload {
    translation_at(20, rate_per_s, duration_s as f64, seed).expect("valid parameters")
}

fn peak(policy: &str, options: &SimOptions) -> f64 {
    let config = PeakConfig {
        rel_tolerance: 0.2,
        ..PeakConfig::default()
    };
    let outcome = find_peak(&config, 1.0, |rate| {
        let duration = BEFORE_S + BURST_S + AFTER_S;
        let result = run_policy(&translation(rate, duration, 1), policy, options)?;
        Ok::<_, fastlibra_runtime::sim::SimError>(Some(Measurement {
            mean_ttft_ms: result.mean_ttft_ns() / 1e6,
            failed_fraction: result.failed() as f64 / result.outcomes.len().max(1) as f64,
        }))
    })
    .expect("runs");
    assert!(
        outcome.bracketed,
        "the peak must be found, not only bounded"
    );
    outcome.peak_rps.expect("a rate under the threshold")
}

#[test]
fn bursts_at_2x_and_5x_the_peak_stay_bounded_lose_nothing_and_recover() {
    let options = options();
    let policy = "fastlibra";
    let peak = peak(policy, &options);
    let normal = translation(0.5 * peak, BEFORE_S + BURST_S + AFTER_S, 2);
    let plan = MemoryPlan::new(&options.hardware, &normal.adapters).expect("plan");
    let page_bound: usize = plan.pages.iter().map(|&p| p as usize).sum();
    for factor in [2.0, 5.0] {
        let burst = translation((factor - 0.5) * peak, BURST_S, 3);
        let workload = with_burst(&normal, &burst, BEFORE_S * S);
        let bounded = StressPlan {
            max_waiting: Some(MAX_WAITING),
            ..StressPlan::default()
        };
        let (result, report) = run_stressed(&workload, policy, &options, &bounded).expect("runs");
        let what = format!("{factor}× the peak ({peak:.2}/s)");
        assert!(
            report.violations.is_empty(),
            "{what}: {:?}",
            report.violations
        );
        let peaks = report.peaks;
        eprintln!("{what}: {peaks:?}");
        // Admission stops at MAX_WAITING waiting; a preempted request rejoins the queue past
        // it, but then it left the batch, so what the engine holds stays under this bound.
        let held_max = MAX_WAITING as usize + MAX_BATCH;
        assert!(peaks.active_requests <= held_max, "{what}: {peaks:?}");
        assert!(peaks.waiting_requests <= held_max, "{what}: {peaks:?}");
        assert!(
            peaks.tree_nodes <= page_bound,
            "{what}: {peaks:?} > {page_bound} pages"
        );
        for o in &result.outcomes {
            assert!(
                matches!(o.failure, None | Some(FailureReason::Rejected)),
                "{what}: request {} failed as {:?}",
                o.request,
                o.failure
            );
        }
        let end = (BEFORE_S + BURST_S + AFTER_S) * S;
        let recovered = recovery_ns(
            &result.outcomes,
            BEFORE_S * S,
            (BEFORE_S + BURST_S) * S,
            end,
            S,
        );
        assert!(
            recovered.is_some(),
            "{what}: TTFT not back to normal by the end"
        );
        if factor == 5.0 {
            let rejected = result
                .outcomes
                .iter()
                .filter(|o| o.failure == Some(FailureReason::Rejected))
                .count();
            assert!(rejected > 0, "{what}: the burst must overload the engine");
            // The same burst without admission control: the queue grows past the bound.
            let (_, open) =
                run_stressed(&workload, policy, &options, &StressPlan::default()).expect("runs");
            assert!(open.violations.is_empty(), "{what}: {:?}", open.violations);
            eprintln!("{what}, no admission control: {:?}", open.peaks);
            assert!(
                open.peaks.active_requests > MAX_WAITING as usize + MAX_BATCH,
                "{what}: without admission control the engine held only {}",
                open.peaks.active_requests
            );
        }
    }
}
