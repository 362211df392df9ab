//! Benchmarks of the engine and simulator:
//! - `sim/chatbot_<policy>`: a whole simulated run (chatbot, Llama-3-8B on H100, 100 LoRAs,
//!   16 sessions/s for 60 s: about 2,700 requests); criterion reports requests per second of
//!   wall time as its throughput (target ≥ 20,000 per policy);
//! - `swapper/rank_1k_of_100k`: one swapper tick's work on a tree of 100,000 KV blocks in HBM:
//!   refresh `Low_lora` and the LoRA factor, then rank every swap-out candidate and keep the
//!   1,000 lowest (target ≤ 1 ms).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastlibra_bench::workload::{WorkloadParams, by_name};
use fastlibra_kernels::HardwareConfig;
use fastlibra_runtime::engine::{
    AdapterInfo, CostHints, Engine, EngineConfig, NewRequest, PolicyKind,
};
use fastlibra_runtime::sim::{SimOptions, run_policy};

fn simulator(c: &mut Criterion) {
    let params = WorkloadParams {
        lora_count: 100,
        rate_per_s: 16.0,
        duration_s: 60.0,
        seed: 1,
        ..WorkloadParams::default()
    };
    let workload = by_name("chatbot", &params).expect("valid");
    let options = SimOptions {
        hardware: HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("presets"),
        seed: 1,
        check_invariants: false,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    };
    let requests = run_policy(&workload, "fastlibra", &options)
        .expect("runs")
        .outcomes
        .len() as u64;
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(requests));
    group.sample_size(10);
    for policy in ["fastlibra", "vllm", "slora"] {
        group.bench_function(format!("chatbot_{policy}"), |b| {
            b.iter(|| black_box(run_policy(&workload, policy, &options).expect("runs")))
        });
    }
    group.finish();
}

/// An engine whose HBM holds 100,000 cached KV blocks under 100 adapters.
fn engine_with_100k_blocks() -> Engine {
    const BLOCK: u32 = 16;
    let adapters = (0..100)
        .map(|_| AdapterInfo {
            rank: 32,
            pages: 80,
        })
        .collect();
    let mut config = EngineConfig::new(
        PolicyKind::Fastlibra,
        [140_000, 200_000, 0],
        BLOCK,
        1,
        1 << 21,
        adapters,
        CostHints {
            h2d_ns_per_page: 52_000.0,
            d2h_ns_per_page: 52_000.0,
            nvme_read_ns_per_page: 380_000.0,
            recompute_ns_per_token: 30_000.0,
        },
    );
    config.knobs.proactive = false;
    config.prefill_token_budget = 1 << 16;
    let mut engine = Engine::new(config).expect("config");
    let mut now = 0;
    let mut next_token = 0u32;
    // 1,000 requests of 100 blocks (+1 token to compute): 100,000 published blocks.
    for id in 0..1_000u64 {
        let tokens = (0..100 * BLOCK + 1)
            .map(|i| (id as u32) << 12 | i)
            .collect();
        engine.handle_arrival(
            now,
            NewRequest {
                id,
                adapter: (id % 100) as u32,
                session: None,
                tokens,
                max_new_tokens: 1,
            },
        );
    }
    // A hand driver: transfers and steps take 1 µs.
    loop {
        let mut idle = true;
        let transfers: Vec<u64> =
            std::iter::from_fn(|| engine.poll_transfer().map(|t| t.id)).collect();
        for id in transfers {
            now += 1_000;
            engine.handle_transfer_done(now, id, true).expect("issued");
            idle = false;
        }
        if let Some(step) = engine.poll_step() {
            now += 1_000;
            let tokens: Vec<u32> = step
                .samples
                .iter()
                .map(|_| {
                    next_token += 1;
                    next_token
                })
                .collect();
            engine
                .handle_step_done(now, step.id, &tokens)
                .expect("issued");
            idle = false;
        }
        while engine.poll_outcome().is_some() {}
        if idle {
            break;
        }
    }
    assert!(
        engine.tree().node_count() >= 100_000,
        "{} nodes",
        engine.tree().node_count()
    );
    engine
}

fn swapper(c: &mut Criterion) {
    let mut engine = engine_with_100k_blocks();
    let mut out = Vec::with_capacity(1_000);
    c.bench_function("swapper/rank_1k_of_100k", |b| {
        b.iter(|| {
            engine.update_lora_factor();
            engine.swap_out_candidates(1_000, &mut out);
            black_box(out.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    targets = simulator, swapper
}
criterion_main!(benches);
