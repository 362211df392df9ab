//! Loading the real model: `Checkpoint::open` of SmolLM2-135M-Instruct Q4_1 (mmap, parse the
//! header and the 49k-token vocabulary, dequantise all 272 tensors to f32 on every core, undo
//! the Q/K row permutation), and the header parse alone. Prints a skip line and measures
//! nothing when the model is not in `FASTLIBRA_MODEL_DIR` (see `scripts/fetch-model.sh`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fastlibra_kernels::checkpoint::{Checkpoint, GgufFile, locate};

fn bench(c: &mut Criterion) {
    let Some(path) = locate::smollm2() else {
        eprintln!("skip checkpoint_load: {} not found", locate::SMOLLM2_FILE);
        return;
    };
    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(10);
    group.bench_function("smollm2_q4_1/open_and_dequantise_all", |b| {
        b.iter(|| black_box(Checkpoint::open(&path).expect("open")))
    });
    group.bench_function("smollm2_q4_1/parse_header_and_metadata", |b| {
        b.iter(|| black_box(GgufFile::open(&path).expect("parse")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
