//! End-to-end properties of the simulator on generated workloads: the usage dependency holds
//! at every event, vLLM strands KV under LoRA churn, no request vanishes, and the same seed
//! gives the same run.

use fastlibra_bench::workload::{WorkloadParams, by_name};
use fastlibra_kernels::HardwareConfig;
use fastlibra_runtime::sim::{SimOptions, SimResult, run_policy};
use fastlibra_runtime::workload::Workload;

/// Llama-3-8B on a GPU cut down to 32 GB (about 5,900 KV pages), with a 16 GB host tier and
/// 64 GB of NVMe: a hundred all-linear adapters (about 24 GB) cannot all stay, so adapters
/// churn; small tiers also keep `check_invariants()` after every event affordable.
fn churn_options(check_invariants: bool) -> SimOptions {
    let mut hardware = HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("presets");
    hardware.gpu.hbm_bytes = 32_000_000_000;
    hardware.gpu.host_memory_bytes = 16 << 30;
    hardware.gpu.nvme_bytes = 64 << 30;
    SimOptions {
        hardware,
        seed: 7,
        check_invariants,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    }
}

fn churn_workload(duration_s: f64) -> Workload {
    let params = WorkloadParams {
        lora_count: 100,
        rate_per_s: 6.0,
        duration_s,
        seed: 3,
        ..WorkloadParams::default()
    };
    by_name("chatbot", &params).expect("valid parameters")
}

fn run(workload: &Workload, policy: &str, options: &SimOptions) -> SimResult {
    run_policy(workload, policy, options).expect("runs")
}

#[test]
fn fastlibra_keeps_the_usage_dependency_at_every_event() {
    // With check_invariants the engine asserts, after every input, the tree's invariants and
    // that no HBM page holds KV whose LoRA is not in HBM.
    let workload = churn_workload(15.0);
    let options = churn_options(true);
    for policy in ["fastlibra", "fastlibra-wos"] {
        let result = run(&workload, policy, &options);
        assert!(
            result.stats.swap_outs > 0,
            "{policy}: the workload must force swap-outs"
        );
        assert!(
            result
                .stats
                .timeline
                .iter()
                .all(|s| s.kv_invalid_pages == 0),
            "{policy}: invalid KV sampled in HBM"
        );
    }
}

#[test]
fn vllm_strands_kv_of_evicted_adapters() {
    let workload = churn_workload(30.0);
    let result = run(&workload, "vllm", &churn_options(false));
    let worst = result
        .stats
        .timeline
        .iter()
        .map(|s| s.kv_invalid_pages)
        .max();
    assert!(
        worst.unwrap_or(0) > 0,
        "vLLM should hold invalid KV under adapter churn"
    );
}

#[test]
fn every_request_completes_or_fails_with_a_reason() {
    let workload = churn_workload(20.0);
    let options = churn_options(false);
    for policy in [
        "fastlibra",
        "vllm",
        "slora",
        "fastlibra-wom",
        "fastlibra-wos",
    ] {
        let result = run(&workload, policy, &options);
        // Ids are handed out at arrival, one each: a gap or a duplicate is a lost request.
        let ids: Vec<u64> = result.outcomes.iter().map(|o| o.request).collect();
        assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>(), "{policy}");
        assert!(!ids.is_empty());
        for o in &result.outcomes {
            match &o.failure {
                None => {
                    assert!(
                        o.first_token_ns.is_some() && o.output_tokens > 0,
                        "{policy}: {o:?}"
                    );
                    let ttft = o.ttft_ns().expect("completed");
                    let parts = o.queue_ns + o.lora_cold_ns + o.kv_cold_ns + o.prefill_ns;
                    assert!(parts <= ttft, "{policy}: breakdown exceeds TTFT: {o:?}");
                }
                Some(reason) => assert!(!reason.to_string().is_empty()),
            }
        }
    }
}

#[test]
fn same_seed_same_run() {
    let workload = churn_workload(10.0);
    let options = churn_options(false);
    for policy in ["fastlibra", "vllm", "slora"] {
        let a = run(&workload, policy, &options);
        let b = run(&workload, policy, &options);
        assert_eq!(a.outcomes, b.outcomes, "{policy}");
        assert_eq!(a.stats, b.stats, "{policy}");
        assert_eq!(a.simulated_ns, b.simulated_ns);
    }
}
