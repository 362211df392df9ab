//! The cost model against numbers a reader can check by hand.

use fastlibra_kernels::{
    AdapterLoad, CostModel, CostParams, GpuSpec, HardwareConfig, Iteration, Link, LoraTargets,
    ModelSpec, PrefillChunk,
};

fn h100_llama3_8b() -> CostModel {
    HardwareConfig::from_presets("llama3-8b", "h100-80g")
        .and_then(|c| c.cost_model())
        .expect("presets are valid")
}

const MS: u64 = 1_000_000;

#[test]
fn prefill_of_1000_tokens_on_h100_takes_tens_of_ms() {
    let cost = h100_llama3_8b();
    let ns = cost.prefill_ns(1000, 0);
    // 2 × 7.5e9 × 1000 + attention ≈ 15.3 TFLOP at 0.6 × 989 TFLOP/s ≈ 25.7 ms, + 0.5 ms.
    assert!((20 * MS..40 * MS).contains(&ns), "{ns} ns");
    // Compute-bound: twice the tokens take about twice as long (a bit more for attention).
    let ns2 = cost.prefill_ns(2000, 0);
    assert!(
        ns2 > 2 * ns - 2 * MS && ns2 < 2 * ns + 5 * MS,
        "{ns2} vs {ns}"
    );
}

#[test]
fn prefill_after_a_cached_prefix_costs_more_attention_only() {
    let cost = h100_llama3_8b();
    let fresh = cost.prefill_ns(500, 0);
    let after = cost.prefill_ns(500, 4000);
    let whole = cost.prefill_ns(4500, 0);
    assert!(after > fresh, "{after} <= {fresh}");
    assert!(
        after < whole / 4,
        "a hit must save most of the work: {after} vs {whole}"
    );
}

#[test]
fn decode_step_on_h100_is_about_weights_over_bandwidth() {
    let cost = h100_llama3_8b();
    let weights = ModelSpec::llama3_8b().weight_bytes() as f64; // 16.06 GB
    let floor_ns = weights / 3.35e12 * 1e9; // ≈ 4.8 ms at peak bandwidth
    let ns = cost.decode_step_ns(1, 0) as f64;
    assert!(ns > floor_ns && ns < floor_ns * 1.5, "{ns} vs {floor_ns}");
    assert!((4 * MS..8 * MS).contains(&(ns as u64)));
    // KV reads add up: 32 sequences × 2,000 tokens × 128 KiB = 8.4 GB more to read.
    let loaded = cost.decode_step_ns(32, 64_000);
    assert!(loaded as f64 > ns * 1.4, "{loaded} vs {ns}");
}

#[test]
fn empty_iteration_is_free_and_mixed_is_one_pass() {
    let cost = h100_llama3_8b();
    assert_eq!(cost.iteration_ns(&Iteration::default()), 0);
    assert_eq!(cost.prefill_ns(0, 100), 0);
    let chunk = [PrefillChunk {
        new_tokens: 256,
        context_tokens_before: 0,
    }];
    let mixed = cost.iteration_ns(&Iteration {
        prefill: &chunk,
        decode_batch: 16,
        decode_context_tokens: 16_000,
        adapters: &[],
    });
    let separate = cost.prefill_ns(256, 0) + cost.decode_step_ns(16, 16_000);
    assert!(
        mixed < separate,
        "weights are read once: {mixed} vs {separate}"
    );
    assert!(mixed >= cost.decode_step_ns(16, 16_000));
}

#[test]
fn lora_overhead_is_small_and_grows_with_distinct_adapters() {
    let cost = h100_llama3_8b();
    let one = [AdapterLoad {
        rank: 64,
        tokens: 32,
    }];
    let many: Vec<AdapterLoad> = (0..32)
        .map(|_| AdapterLoad {
            rank: 64,
            tokens: 1,
        })
        .collect();
    let base = cost.decode_step_ns(32, 32_000);
    let with_one = cost.lora_ns(&one);
    let with_many = cost.lora_ns(&many);
    assert!(with_one > 0 && with_one < base / 10, "{with_one} vs {base}");
    assert!(with_many > with_one * 10, "{with_many} vs {with_one}");
    assert_eq!(cost.lora_ns(&[]), 0);
}

#[test]
fn transfers_are_latency_plus_size_over_bandwidth() {
    let cost = h100_llama3_8b();
    assert_eq!(cost.transfer_ns(Link::H2D, 0), 0);
    // 50 MB over 50 GB/s = 1 ms, plus 10 µs.
    assert_eq!(cost.transfer_ns(Link::H2D, 50_000_000), 1_010_000);
    assert_eq!(cost.transfer_ns(Link::D2H, 50_000_000), 1_010_000);
    // 6.9 MB at 6.9 GB/s = 1 ms + 80 µs; 4.1 MB at 4.1 GB/s = 1 ms + 20 µs.
    assert_eq!(cost.transfer_ns(Link::NvmeRead, 6_900_000), 1_080_000);
    assert_eq!(cost.transfer_ns(Link::NvmeWrite, 4_100_000), 1_020_000);
    // One byte rounds up to a whole nanosecond.
    assert_eq!(cost.transfer_ns(Link::H2D, 1), 10_001);
    // A rank-16 all-linear Llama-3-8B adapter (80 MiB) over Gen5 takes under 2 ms.
    let adapter = ModelSpec::llama3_8b().lora_bytes(16, LoraTargets::ALL_LINEAR);
    assert!(cost.transfer_ns(Link::H2D, adapter) < 2 * MS);
}

#[test]
fn tensor_parallel_divides_per_gpu_work() {
    let gpu = GpuSpec::h100_80g();
    let tp4 =
        CostModel::new(ModelSpec::llama3_70b(), gpu.clone(), CostParams::default()).expect("valid");
    let tp1 = CostModel::new(
        ModelSpec {
            tensor_parallel: 1,
            ..ModelSpec::llama3_70b()
        },
        gpu,
        CostParams::default(),
    )
    .expect("valid");
    let (a, b) = (tp4.prefill_ns(2000, 0), tp1.prefill_ns(2000, 0));
    let ratio = b as f64 / a as f64;
    assert!(ratio > 3.5 && ratio < 4.0, "{ratio}");
    let ratio = tp1.decode_step_ns(1, 0) as f64 / tp4.decode_step_ns(1, 0) as f64;
    assert!(ratio > 3.0 && ratio < 4.0, "{ratio}");
}

#[test]
fn faster_gpu_is_faster() {
    let on = |gpu: &str| {
        HardwareConfig::from_presets("llama2-13b", gpu)
            .and_then(|c| c.cost_model())
            .expect("valid")
    };
    let (a100, h100, h200) = (on("a100-80g"), on("h100-80g"), on("h200"));
    assert!(a100.prefill_ns(1000, 0) > h100.prefill_ns(1000, 0));
    assert!(h100.decode_step_ns(8, 8000) > h200.decode_step_ns(8, 8000));
    assert!(a100.transfer_ns(Link::H2D, 1 << 30) > h100.transfer_ns(Link::H2D, 1 << 30));
}
