//! The data handler on a synthetic trace of the built-in services (1,000,000 rows, written to
//! a temporary folder), reading through writing (target: ≥ 1 million rows/s). The 10-million-
//! row run is a documented command in `docs/dgg.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastlibra_dgg::handler::{HandleOptions, handle};
use fastlibra_dgg::{builtin, synth};

const ROWS: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("fastlibra-dgg-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = dir.join("trace.csv");
    let services: Vec<_> = builtin::services()
        .into_iter()
        .map(|s| (s.name.to_string(), s.graphs))
        .collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).expect("create"));
    let rows = synth::write_trace_csv(&mut f, &services, ROWS, 1).expect("write");
    drop(f);
    let mut group = c.benchmark_group("dgg_handle");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function("synthetic_1m_rows", |b| {
        b.iter(|| {
            handle(
                std::slice::from_ref(&csv),
                &dir.join("out"),
                &HandleOptions::default(),
            )
            .expect("handle")
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
