//! Speed of the CPU reference backend's default model (4 layers, hidden 256, 8 heads, 4 KV
//! heads, FFN 512, vocabulary 1024) with 16-token pages: one 256-token prefill, and one
//! decode step of a batch of 8 sequences, each at position 128 with its own adapter.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fastlibra_kernels::cpu::{CpuLora, CpuModel, CpuModelConfig, KvArena, SeqInput};

const BLOCK: usize = 16;

fn bench(c: &mut Criterion) {
    let config = CpuModelConfig::default();
    let model = CpuModel::random(config.clone(), 1).expect("default config is valid");
    let tokens: Vec<u32> = (0..256u32).map(|i| (i * 37) % 1024).collect();

    let mut arena = KvArena::for_model(&config, BLOCK, 16).expect("arena");
    let table: Vec<u32> = (0..16).collect();
    c.bench_function("cpu/prefill_256", |b| {
        b.iter(|| {
            model
                .prefill(&mut arena, black_box(&tokens), &table, 0, None)
                .expect("prefill")
        })
    });

    // Eight sequences of 128 cached tokens (8 pages each) and one more page for the step.
    let mut arena = KvArena::for_model(&config, BLOCK, 8 * 9).expect("arena");
    let loras: Vec<CpuLora> = (0..8)
        .map(|s| CpuLora::random(&config, 16, 1.0, s).expect("lora"))
        .collect();
    let tables: Vec<Vec<u32>> = (0..8u32).map(|s| (s * 9..s * 9 + 9).collect()).collect();
    for (table, lora) in tables.iter().zip(&loras) {
        model
            .prefill(&mut arena, &tokens[..128], table, 0, Some(lora))
            .expect("prefill");
    }
    let step = [7u32];
    let seqs: Vec<SeqInput<'_>> = tables
        .iter()
        .zip(&loras)
        .map(|(table, lora)| SeqInput {
            tokens: &step,
            block_table: table,
            start_pos: 128,
            lora: Some(lora),
        })
        .collect();
    c.bench_function("cpu/decode_step_batch_8", |b| {
        b.iter(|| {
            model
                .forward_batch(&mut arena, black_box(&seqs))
                .expect("decode")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
